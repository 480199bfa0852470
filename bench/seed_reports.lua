-- wrk script: each job's queued, started and complete reports, form-encoded as the seed's
-- Faraday middlewares send them. Consecutive requests of a thread go out on different
-- connections, so a job's reports also race each other and arrive out of order.
local thread_count = 0

-- Jids start with RUN_ID (set by the Python side), so a run never repeats an earlier run's jids
-- in a database that is reused.
local run_id = os.getenv("RUN_ID") or "00000000"
-- An app's prefix (/apps/NAME) when the supervisor watches several; empty for the default app.
local prefix = os.getenv("PATH_PREFIX") or ""

function setup(thread)
  thread:set("thread_id", thread_count)
  thread_count = thread_count + 1
end

local counter = 0
local body = "arguments=%5B1234%2C%22customer-42%40example.com%22%2C%7B%22plan%22%3A%22pro%22%7D%5D"
  .. "&job_class=HardWorker&queue=default"
local form = { ["Content-Type"] = "application/x-www-form-urlencoded" }

request = function()
  local job = math.floor(counter / 3)
  local step = counter % 3
  counter = counter + 1
  local jid = string.format("%s%02x%014x", run_id, thread_id, job)
  if step == 0 then
    return wrk.format("POST", prefix .. "/api/v1/jobs", form, body .. "&job_id=" .. jid)
  elseif step == 1 then
    return wrk.format("POST", prefix .. "/api/v1/jobs/" .. jid .. "/started", form, body)
  end
  return wrk.format("POST", prefix .. "/api/v1/jobs/" .. jid .. "/complete", form, body)
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d non2xx=%d errors=%d p50_us=%d p99_us=%d seconds=%.3f\n",
    summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), summary.duration / 1e6))
end
