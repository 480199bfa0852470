# Jobs that prove a restart ran the very job that was lost: each holds while the test keeps
# `e2e:hold` set (so it can be killed mid-run), then writes what it was given to `e2e:ran`.
# A server middleware writes each payload Sidekiq fetched to `e2e:payloads`, as Sidekiq saw it.
# Loaded with `sidekiq -r` (and by enqueue.rb through E2E_APP), after jobs.rb.
require_relative "jobs"
require "json"

module E2E
  def self.hold
    240.times do
      break unless Sidekiq.redis { |redis| redis.get("e2e:hold") }
      sleep 0.25
    end
  end

  def self.record(job_class, jid, args)
    Sidekiq.redis { |redis| redis.rpush("e2e:ran", JSON.generate("class" => job_class, "jid" => jid, "args" => args)) }
  end

  # Outermost server middleware: the payload exactly as fetched, before any other runs.
  class PayloadRecorder
    def call(_worker, job, _queue)
      Sidekiq.redis { |redis| redis.rpush("e2e:payloads", JSON.generate(job)) }
      yield
    end
  end
end

Sidekiq.configure_server do |config|
  config.server_middleware { |chain| chain.prepend E2E::PayloadRecorder }
end

class ExactJob
  include Sidekiq::Worker

  def perform(*args)
    E2E.hold
    E2E.record(self.class.name, jid, args)
  end
end

# Fails once released: with its retry policy kept, Sidekiq neither retries it nor keeps it dead.
class RetrylessJob
  include Sidekiq::Worker
  sidekiq_options retry: false, tags: ["vip"], "tenant" => { "id" => 9 }

  def perform(*args)
    E2E.hold
    E2E.record(self.class.name, jid, args)
    raise ArgumentError, "retryless job fails on purpose"
  end
end

# ActiveJob through Sidekiq's adapter: Rails' own (JobWrapper) with Debian's ActiveJob 6.1, or
# Sidekiq's (Sidekiq::ActiveJob::Wrapper) with ActiveJob 7.2 on Sidekiq 7.3+ (env.sh 8 rails7).
require "active_job"
if ActiveJob::VERSION::MAJOR < 7 && Gem::Version.new(Sidekiq::VERSION) >= Gem::Version.new("7.3")
  # Sidekiq 7.3+ ships an adapter file at Rails' path; a Rails 6.1 app loads Rails' own.
  require File.join(Gem.loaded_specs.fetch("activejob").gem_dir, "lib/active_job/queue_adapters/sidekiq_adapter")
end
ActiveJob::Base.queue_adapter = :sidekiq
ActiveJob::Base.logger = Logger.new(nil)

class InvoiceJob < ActiveJob::Base
  queue_as :default

  def perform(*args)
    E2E.hold
    E2E.record(self.class.name, provider_job_id, args)
  end
end
