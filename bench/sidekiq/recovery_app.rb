# The recovery benchmark's Sidekiq app (bench/recovery.py), with the gem reporting to the
# supervisor. Each run of a job appends its start time (epoch seconds, this host's clock) to the
# Redis list bench:runs:<name>, then sleeps while the bench holds the key bench:sleep, so that the
# process can be SIGKILLed mid-job; a run that ends counts in bench:done.
#
# Loaded by `sidekiq -r`; run directly it pushes jobs: ruby recovery_app.rb N  (prints their jids)
require "sidekiq"
require "json"
$LOAD_PATH.unshift(File.expand_path("../../clients/ruby/lib", __dir__))
require "sidekiq_supervisor"

class RecoveryBenchJob
  include Sidekiq::Worker
  # Not Sidekiq's defaults, so the gem keeps them with the job and a recovery pushes them again.
  sidekiq_options retry: 2, backtrace: 5

  def perform(name)
    Sidekiq.redis { |redis| redis.rpush("bench:runs:#{name}", format("%.6f", Time.now.to_f)) }
    2400.times do
      break unless Sidekiq.redis { |redis| redis.get("bench:sleep") }
      sleep 0.25
    end
    Sidekiq.redis { |redis| redis.incr("bench:done") }
  end
end

if $PROGRAM_NAME == __FILE__
  jids = Array.new(Integer(ARGV.fetch(0))) { |number| RecoveryBenchJob.perform_async("job-#{number}") }
  SidekiqSupervisor.flush if SidekiqSupervisor.respond_to?(:flush)
  puts JSON.generate(jids)
end
