# The seed's two middlewares, as it prints them: only the characters the seed text lost are put
# back (each `Faraday.post(` ... `})`, the `yield`s and the `end`s). The client middleware's
# `SIDEDIQ_SUPERVISOR_HOST` is the seed's own typo, kept on purpose: users pasted it verbatim.
#
# Nothing else from Sidekiq is needed: both are plain classes whose `call` takes a block. The
# seed's `Sidekiq.configure_*` blocks run only where Sidekiq itself is loaded.

class JobQueued
  def call(worker, job, queue, redis_pool)
    response = Faraday.post("#{ENV.fetch("SIDEDIQ_SUPERVISOR_HOST")}/api/v1/jobs", {
      job_id: job["jid"],
      arguments: job["args"].to_json,
      job_class: job["class"],
      queue: queue
    })
    yield
  end
end

if defined?(Sidekiq)
  Sidekiq.configure_client do |config|
    config.client_middleware do |chain|
      chain.add JobQueued
    end
  end
end

class CheckInCheckOut
  def call(worker, job, queue)
    response = Faraday.post("#{ENV.fetch("SIDEKIQ_SUPERVISOR_HOST")}/api/v1/jobs/#{job["jid"]}/started", {
      arguments: job["args"].to_json,
      job_class: job["class"],
      queue: queue
    })
    yield
    response = Faraday.post("#{ENV.fetch("SIDEKIQ_SUPERVISOR_HOST")}/api/v1/jobs/#{job["jid"]}/complete", {
      arguments: job["args"].to_json,
      job_class: job["class"],
      queue: queue
    })
  end
end

if defined?(Sidekiq)
  Sidekiq.configure_server do |config|
    config.server_middleware do |chain|
      chain.add CheckInCheckOut
    end
  end
end
