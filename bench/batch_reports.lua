-- wrk script: POST /api/v1/events batches shaped as the gem sends them. Each batch holds whole
-- jobs (queued, started with the worker's identity, complete), BATCH_SIZE events at most.
local thread_count = 0

-- Jids start with RUN_ID (set by the Python side), so a run never repeats an earlier run's jids
-- in a database that is reused.
local run_id = os.getenv("RUN_ID") or "00000000"

function setup(thread)
  thread:set("thread_id", thread_count)
  thread_count = thread_count + 1
end

local batch_size = tonumber(os.getenv("BATCH_SIZE") or "500")
local jobs_per_batch = math.max(1, math.floor(batch_size / 3))
local job = 0
local headers = { ["Content-Type"] = "application/json" }
local fields = '"job_class":"HardWorker","queue":"default",'
  .. '"arguments":"[1234,\\"customer-42@example.com\\",{\\"plan\\":\\"pro\\"}]"'
local worker = '"worker":{"identity":"worker-1:4242:0f3a9c","hostname":"worker-1","pid":4242,"thread":"tid-1"}'

local function event(name, jid, at, extra)
  return string.format('{"event":"%s","job_id":"%s",%s,"at":%.6f%s}', name, jid, fields, at, extra)
end

request = function()
  local items = {}
  local at = 1764340000 + job / 1000
  for _ = 1, jobs_per_batch do
    local jid = string.format("%s%02x%014x", run_id, thread_id, job)
    job = job + 1
    items[#items + 1] = event("queued", jid, at, "")
    items[#items + 1] = event("started", jid, at + 0.001, "," .. worker)
    items[#items + 1] = event("complete", jid, at + 0.002, "")
  end
  return wrk.format("POST", "/api/v1/events", headers, '{"events":[' .. table.concat(items, ",") .. "]}")
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d non2xx=%d errors=%d p50_us=%d p99_us=%d seconds=%.3f events=%d\n",
    summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), summary.duration / 1e6, jobs_per_batch * 3))
end
