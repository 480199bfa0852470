# The end-to-end jobs, and one more whose queue (E2E_PARKED_QUEUE) no Sidekiq of the tests serves
# (they listen on `default`): its jobs wait there, so each app's queues show figures of their own.
require_relative "jobs"

class ParkedJob
  include Sidekiq::Worker
  sidekiq_options queue: ENV.fetch("E2E_PARKED_QUEUE", "parked")

  def perform(name); end
end
