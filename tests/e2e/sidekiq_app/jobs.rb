# Jobs for the end-to-end tests: a real Sidekiq process loads this file (sidekiq -r), and so does
# the enqueuing script. Which middlewares report to the supervisor is chosen by the environment:
# SUPERVISOR_CLIENT=seed loads the seed's Faraday middlewares, SUPERVISOR_CLIENT=gem the gem.
require "sidekiq"

case ENV.fetch("SUPERVISOR_CLIENT", "seed")
when "seed"
  require "faraday"
  require "json"
  require_relative "../seed_middlewares"
when "gem"
  $LOAD_PATH.unshift(File.expand_path("../../../clients/ruby/lib", __dir__))
  require "sidekiq_supervisor"
end

# Succeeds at once.
class QuickJob
  include Sidekiq::Worker

  def perform(number, email)
    sleep 0.02
  end
end

# Raises until the test allows it (a Redis key), so a restart can make it complete.
class FlakyOnceJob
  include Sidekiq::Worker
  sidekiq_options retry: false

  def perform(order)
    allowed = Sidekiq.redis { |redis| redis.get("e2e:allow:#{order}") }
    raise ArgumentError, "order #{order} is not ready" unless allowed
  end
end

# Sleeps while the test holds a Redis key, so it can be seen running, or killed mid-job.
class SleepyJob
  include Sidekiq::Worker
  sidekiq_options retry: false

  def perform(name)
    60.times do
      break unless Sidekiq.redis { |redis| redis.get("e2e:sleep:#{name}") }
      sleep 0.25
    end
  end
end

# Like SleepyJob, and counts each run that ends (e2e:done:<name>), so a test can tell how many
# times it ran.
class CountedJob
  include Sidekiq::Worker
  sidekiq_options retry: false

  def perform(name)
    240.times do
      break unless Sidekiq.redis { |redis| redis.get("e2e:sleep:#{name}") }
      sleep 0.25
    end
    Sidekiq.redis { |redis| redis.incr("e2e:done:#{name}") }
  end
end

# A poison pill: counts its run (e2e:runs:<name>), waits until the supervisor has its `started`
# report, then SIGKILLs its own process, as the OOM killer would. Every run takes a process down.
# (Without the flush the kill comes before the gem's reporter sends `started`, within its 0.5 s
# flush interval: the ledger then only knows the job as queued, and recovery does not take it.)
class PoisonJob
  include Sidekiq::Worker
  sidekiq_options retry: false

  def perform(name)
    Sidekiq.redis { |redis| redis.incr("e2e:runs:#{name}") }
    SidekiqSupervisor.flush(20) if defined?(SidekiqSupervisor)
    Process.kill(:KILL, Process.pid)
  end
end
