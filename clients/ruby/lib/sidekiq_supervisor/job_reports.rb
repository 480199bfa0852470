# frozen_string_literal: true

require_relative "report"

module SidekiqSupervisor
  # The reports of one run of a job, made by the server middleware on the job's thread. The
  # job's fields are encoded once, when the run begins, and shared by its started, complete and
  # failed reports. No method raises: a report that cannot be made is logged and skipped.
  #
  # This is the gem's hottest code (two reports per job, on a thread that holds the GVL): each
  # report is one interpolation into one new String, with `at` written from integer
  # microseconds, and the process id that the reporter was checked against is reused rather
  # than asked of the kernel again.
  class JobReports
    def initialize(reporter, job, queue)
      @reporter = reporter
      @job = job
      @fields = Report.fields(job, queue)
    end

    def started
      @reporter.record("{\"event\":\"started\",#{@fields},\"at\":#{Report.now_text}," \
                       "\"worker\":#{Identity.worker_json(@reporter.pid)}#{Report.payload_member(@job)}}")
    rescue StandardError => e
      failed_to_report(Report::STARTED, e)
    end

    def complete
      @reporter.record("{\"event\":\"complete\",#{@fields},\"at\":#{Report.now_text}}")
    rescue StandardError => e
      failed_to_report(Report::COMPLETE, e)
    end

    def failed(error)
      @reporter.record("{\"event\":\"failed\",#{@fields},\"at\":#{Report.now_text}#{Report.error_member(error)}}")
    rescue StandardError => e
      failed_to_report(Report::FAILED, e)
    end

    private

    def failed_to_report(event, error)
      SidekiqSupervisor.log_report_error("could not report #{event}: #{error.class}: #{error.message}")
    end
  end
end
