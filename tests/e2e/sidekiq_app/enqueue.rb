# Pushes jobs through Sidekiq's client (so client middlewares run) and prints their jids as JSON.
# Usage: ruby enqueue.rb '[["QuickJob", [1, "a@example.com"]], ["SleepyJob", ["nap"]]]'
require_relative "jobs"
require "json"

jids = JSON.parse(ARGV.fetch(0)).map do |class_name, args|
  Object.const_get(class_name).perform_async(*args)
end
SidekiqSupervisor.flush if defined?(SidekiqSupervisor) && SidekiqSupervisor.respond_to?(:flush)
puts JSON.generate(jids)
