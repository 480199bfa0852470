# frozen_string_literal: true

module SidekiqSupervisor
  # Sidekiq server middleware: reports `started` (with the worker's identity) before the job
  # runs, `complete` after it returns, and `failed` when it raises - then re-raises the very
  # same exception, untouched, because Sidekiq's retry handler (which runs outside the server
  # middleware chain) must see it. Its own errors never reach the job: JobReports swallows them.
  class ServerMiddleware
    include ::Sidekiq::ServerMiddleware if defined?(::Sidekiq::ServerMiddleware)

    def call(_job_instance, job, queue)
      reports = SidekiqSupervisor.job_reports(job, queue)
      reports&.started
      begin
        result = yield
      rescue Exception => e # rubocop:disable Lint/RescueException -- Sidekiq retries any Exception
        reports&.failed(e) unless self.class.shutdown?(e)
        raise
      end
      reports&.complete
      result
    end

    # Sidekiq::Shutdown means the process stopped before the job finished: Sidekiq puts the job
    # back in its queue, it did not fail. It stays `started` until it runs again.
    def self.shutdown?(error)
      defined?(::Sidekiq::Shutdown) && error.is_a?(::Sidekiq::Shutdown)
    end
  end
end
