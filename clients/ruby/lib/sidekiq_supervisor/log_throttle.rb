# frozen_string_literal: true

module SidekiqSupervisor
  # Says whether a message of a kind may be logged now: a supervisor that is down for an hour
  # must not fill the app's log with one line per failed request or per dropped report.
  class LogThrottle
    def initialize(interval = 60.0)
      @interval = interval
      @last = {}
      @lock = Mutex.new
    end

    def allow?(kind)
      now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      @lock.synchronize do
        last = @last[kind]
        return false if last && now - last < @interval

        @last[kind] = now
        true
      end
    end
  end
end
