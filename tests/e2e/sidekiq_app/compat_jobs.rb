# Jobs of the compatibility tests that run the real Sidekiq::Web beside the monitor
# (tests/web/monitor/test_sidekiq_web_compat.py). A real Sidekiq process of each line (6, 7, 8)
# loads this file and runs them, so every set, queue, heartbeat and metric in Redis is written by
# Sidekiq itself. No supervisor middleware is loaded: the data is Sidekiq's alone.
require "sidekiq"

# The error of the failing jobs: a message longer than 300 characters, so pages that cut it short
# in lists must show it whole on the job's own page.
class CompatError < StandardError; end

COMPAT_LONG_MESSAGE = ("compat failure " + (1..40).map { |i| "word#{i}" }.join(" ") + " end of message").freeze

# Succeeds at once (7 and 8 then write execution metrics for it).
class CompatOkJob
  include Sidekiq::Job

  def perform(number)
    number
  end
end

# Fails with retries left; its next retry is an hour away, so the process never runs it again.
class CompatFailJob
  include Sidekiq::Job
  sidekiq_options backtrace: true
  sidekiq_retry_in { |_count, _exception| 3600 }

  def perform(number)
    raise CompatError, "#{COMPAT_LONG_MESSAGE} (job #{number})"
  end
end

# Fails with no retry: straight to the Dead set.
class CompatDeadJob
  include Sidekiq::Job
  sidekiq_options retry: 0, backtrace: true

  def perform(number)
    raise CompatError, "#{COMPAT_LONG_MESSAGE} (dead #{number})"
  end
end

# Runs while the key compat:busy exists (at most ten minutes), so the Busy page shows it.
class CompatBusyJob
  include Sidekiq::Job
  sidekiq_options retry: false

  def perform(name)
    2400.times do
      break unless Sidekiq.redis { |redis| redis.get("compat:busy") }
      sleep 0.25
    end
  end
end
