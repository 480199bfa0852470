# Pushes jobs through Sidekiq's client (so client middlewares run) and prints their jids as JSON.
# Usage: ruby enqueue.rb '[["QuickJob", [1, "a@example.com"]], ["SleepyJob", ["nap"]]]'
# E2E_APP names the app file to load (default jobs.rb); ActiveJob classes go through perform_later.
require_relative ENV.fetch("E2E_APP", "jobs")
require "json"

jids = JSON.parse(ARGV.fetch(0), max_nesting: false).map do |class_name, args|
  job_class = Object.const_get(class_name)
  if defined?(ActiveJob::Base) && job_class < ActiveJob::Base
    job_class.perform_later(*args).provider_job_id
  else
    job_class.perform_async(*args)
  end
end
SidekiqSupervisor.flush if defined?(SidekiqSupervisor) && SidekiqSupervisor.respond_to?(:flush)
puts JSON.generate(jids)
