# frozen_string_literal: true

require_relative "report"

module SidekiqSupervisor
  # The reports of one run of a job, made by the server middleware on the job's thread. The
  # job's fields are encoded once, when the run begins, and shared by its started, complete and
  # failed reports. No method raises: a report that cannot be made is logged and skipped.
  class JobReports
    def initialize(reporter, job, queue)
      @reporter = reporter
      @job = job
      @fields = Report.fields(job, queue)
    end

    def started
      record(Report::STARTED) { Report.worker_member + Report.payload_member(@job) }
    end

    def complete
      record(Report::COMPLETE)
    end

    def failed(error)
      record(Report::FAILED) { Report.error_member(error) }
    end

    private

    def record(event)
      extra = yield if block_given?
      @reporter.record(Report.line(event, @fields, Report.now, extra))
    rescue StandardError => e
      SidekiqSupervisor.log_report_error("could not report #{event}: #{e.class}: #{e.message}")
    end
  end
end
