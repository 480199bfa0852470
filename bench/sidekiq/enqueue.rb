# Pushes N no-op jobs one by one through Sidekiq's client (client middlewares run) and prints
# the seconds it took. Usage: ruby enqueue.rb N
require_relative "noop_app"

count = Integer(ARGV.fetch(0))
started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
count.times { |number| NoopJob.perform_async(number) }
elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
SidekiqSupervisor.flush if defined?(SidekiqSupervisor)
puts elapsed
