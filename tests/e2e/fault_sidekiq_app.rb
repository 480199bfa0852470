# The Sidekiq app of the gem's fault tests and of bench/gem_faults.py (sidekiq -r this file).
#
# It loads the gem from this checkout and configures it as an app would, in code, with short
# timeouts and a small buffer so that an outage of a few seconds overflows it. FAULTS_* variables
# set the bounds; SIDEKIQ_SUPERVISOR_HOST says where the supervisor (or the fault front) is.
#
# Every job counts itself done in Redis, so the test sees exactly how many jobs ran. A thread
# publishes the gem's counters (SidekiqSupervisor.stats) to Redis, so that the test reads them
# without making reports of its own.
require "json"
require "sidekiq"

$LOAD_PATH.unshift(File.expand_path("../../clients/ruby/lib", __dir__))
require "sidekiq_supervisor"

module FaultApp
  DONE_KEY = "faults:done"
  STATS_KEY = "faults:stats"
  PUBLISH_EVERY = 0.05

  # Publishes the gem's counters until the process ends.
  def self.publish_stats
    Thread.new do
      Thread.current.name = "fault-app-stats"
      loop do
        stats = SidekiqSupervisor.stats.merge(at: Process.clock_gettime(Process::CLOCK_REALTIME))
        Sidekiq.redis { |redis| redis.set(STATS_KEY, JSON.generate(stats)) }
        sleep PUBLISH_EVERY
      rescue StandardError => e
        Sidekiq.logger.warn("fault app: could not publish stats: #{e.class}: #{e.message}")
        sleep PUBLISH_EVERY
      end
    end
  end
end

SidekiqSupervisor.configure do |config|
  config.buffer_size = Integer(ENV.fetch("FAULTS_BUFFER_SIZE", "600"))
  config.buffer_bytes = Integer(ENV.fetch("FAULTS_BUFFER_BYTES", (64 * 1024 * 1024).to_s))
  config.batch_size = 200
  config.flush_interval = 0.1
  config.open_timeout = 0.5
  # Below the fault front's 5 s delay, so the sender gives up and sends again; long enough that it
  # spends most of a slow phase inside a request, which is when a job must not wait for it.
  config.read_timeout = 3.0
  config.write_timeout = 1.0
  config.retry_base = 0.1
  config.retry_max = 0.5
  config.shutdown_timeout = 1.0
end

Sidekiq.configure_server do |config|
  # Sidekiq logs two lines per job at INFO: thousands of jobs a second would measure the log.
  # The gem's own messages are warnings and errors, and still show.
  Sidekiq.logger.level = Logger::WARN
  config.on(:startup) { FaultApp.publish_stats }
end

# Does nothing but say it ran; the payload only gives its reports weight.
class FaultJob
  include Sidekiq::Worker
  sidekiq_options retry: false

  def perform(_number, _payload)
    Sidekiq.redis { |redis| redis.incr(FaultApp::DONE_KEY) }
  end
end
