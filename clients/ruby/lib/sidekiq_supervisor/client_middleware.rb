# frozen_string_literal: true

module SidekiqSupervisor
  # Sidekiq client middleware: reports `queued` for each job pushed, from every process that
  # pushes (the app, and the Sidekiq processes whose jobs enqueue jobs).
  #
  # It always yields and returns the block's value, which is what tells Sidekiq to push. The
  # report is recorded after the push and only if it happened (a later middleware may veto it
  # by returning nil), but carries the time the push began, so it precedes the job's start.
  class ClientMiddleware
    # Sidekiq 6.5+ and 7+ ask middleware to include this (it gives #config); 6.4 has none.
    include ::Sidekiq::ClientMiddleware if defined?(::Sidekiq::ClientMiddleware)

    def call(_job_class_or_string, job, queue, _redis_pool = nil)
      reporter = SidekiqSupervisor.active_reporter
      return yield unless reporter

      at = Report.now_text
      result = yield
      SidekiqSupervisor.report_queued(reporter, job, queue, at) if result
      result
    end
  end
end
