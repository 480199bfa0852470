# Drives the seed's middlewares the way Sidekiq would, without Sidekiq: for each of N jobs
# (ARGV[0]), the client middleware around the push, then the server middleware around the run.
# Every fourth job raises inside the run, so its `complete` is never sent. Prints, as JSON on
# stdout, each job and its expected outcome: "complete" or "started" (left uncompleted).
#
# Needs SIDEKIQ_SUPERVISOR_HOST and SIDEDIQ_SUPERVISOR_HOST (the seed's typo) in the environment.

require "faraday"
require "json"
require "securerandom"
require_relative "seed_middlewares"

class JobFailed < StandardError; end

count = Integer(ARGV.fetch(0, "20"))
classes = ["HardWorker", "Mailers::WelcomeMailer", "ReportJob"]

jobs = Array.new(count) do |i|
  email = "user#{i}.#{SecureRandom.hex(4)}@example.com"
  args = [
    i,
    -(2**40) - i,
    email,
    "ORD-#{1000 + i}",
    "Zoë café №#{i} — 東京 😀",
    "a+b=c&d%20e_f 100% \"quoted\" \\ back",
    { "user_id" => i, "tags" => ["x", "y"], "ok" => i.even?, "note" => nil },
    i * 0.25,
  ]
  now = Time.now.to_f
  {
    "class" => classes[i % classes.size],
    "args" => args,
    "retry" => true,
    "queue" => "default",
    "jid" => SecureRandom.hex(12),
    "created_at" => now,
    "enqueued_at" => now,
  }
end

results = jobs.each_with_index.map do |job, i|
  raises = (i % 4 == 3)
  JobQueued.new.call(nil, job, "default", nil) { }
  begin
    CheckInCheckOut.new.call(nil, job, "default") do
      raise JobFailed, "job #{job["jid"]} failed on purpose" if raises
    end
  rescue JobFailed
    # Sidekiq would record the failure and schedule a retry; the supervisor sees no `complete`.
  end
  {
    "jid" => job["jid"],
    "class" => job["class"],
    "queue" => "default",
    "args" => job["args"],
    "email" => job["args"][2],
    "outcome" => raises ? "started" : "complete",
  }
end

puts JSON.generate(results)
