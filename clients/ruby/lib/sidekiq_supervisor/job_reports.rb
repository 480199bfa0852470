# frozen_string_literal: true

require_relative "report"

module SidekiqSupervisor
  # The reports of one run of a job, made by the server middleware on the job's thread. The
  # job's fields are encoded once, when the run begins, and shared by its started, complete and
  # failed reports. No method raises: a report that cannot be made is logged and skipped.
  #
  # This is the gem's hottest code (two reports per job, on a thread that holds the GVL). Each
  # report goes to the reporter in pieces (Reporter#record_parts), which the buffer copies one
  # after the other: the job's fields, encoded once, and constant Strings, with `at` written from
  # integer microseconds. So a job's reports allocate no String of their own, only the fields
  # and `at` (see docs/performance.md). The process id that the reporter was checked against
  # is reused rather than asked of the kernel again.
  class JobReports
    STARTED_HEAD = "{\"event\":\"started\","
    COMPLETE_HEAD = "{\"event\":\"complete\","
    FAILED_HEAD = "{\"event\":\"failed\","
    AT_KEY = ",\"at\":"
    CLOSE = "}"

    def initialize(reporter, job, queue)
      @reporter = reporter
      @job = job
      @fields = Report.fields(job, queue)
    end

    def started
      payload = Report.payload_member(@job)
      tail = if payload.empty?
               Identity.started_tail(@reporter.pid)
             else
               ",\"worker\":#{Identity.worker_json(@reporter.pid)}#{payload}}"
             end
      @reporter.record_parts(STARTED_HEAD, @fields, AT_KEY, Report.now_text, tail)
    rescue StandardError => e
      failed_to_report(Report::STARTED, e)
    end

    def complete
      @reporter.record_parts(COMPLETE_HEAD, @fields, AT_KEY, Report.now_text, CLOSE)
    rescue StandardError => e
      failed_to_report(Report::COMPLETE, e)
    end

    def failed(error)
      @reporter.record_parts(FAILED_HEAD, @fields, AT_KEY, Report.now_text, "#{Report.error_member(error)}}")
    rescue StandardError => e
      failed_to_report(Report::FAILED, e)
    end

    private

    def failed_to_report(event, error)
      SidekiqSupervisor.log_report_error("could not report #{event}: #{error.class}: #{error.message}")
    end
  end
end
