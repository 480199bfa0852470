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
        reports&.failed(e) unless self.class.requeued?(e)
        raise
      end
      reports&.complete
      result
    end

    # Whether +error+ means the job was stopped and put back in its queue rather than failed.
    # It stays `started` until it runs again.
    #  - Sidekiq::Shutdown: the process stopped before the job finished (every line).
    #  - Sidekiq::JobRetry::Skip raised while handling Sidekiq::Job::Interrupted (7.3+): an
    #    iterable job interrupted by a shutdown. Sidekiq's InterruptHandler, inside our
    #    middleware, pushes the job again (reported `queued` by the client middleware) and
    #    raises Skip in its rescue clause, so the Interrupted is the Skip's cause.
    def self.requeued?(error)
      return true if defined?(::Sidekiq::Shutdown) && error.is_a?(::Sidekiq::Shutdown)

      defined?(::Sidekiq::JobRetry::Skip) && defined?(::Sidekiq::Job::Interrupted) &&
        error.is_a?(::Sidekiq::JobRetry::Skip) && error.cause.is_a?(::Sidekiq::Job::Interrupted)
    end
  end
end
