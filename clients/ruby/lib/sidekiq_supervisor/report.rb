# frozen_string_literal: true

require "json"
require_relative "identity"

module SidekiqSupervisor
  # Encodes the reports of the wire contract from Sidekiq's job hash, as JSON text:
  #   {"event", "job_id", "job_class", "queue", "arguments" (the args array), "at",
  #    "worker" (started), "error" (failed), "payload" (queued and started)}
  #
  # A job's own fields are encoded once, as a fragment that each of its reports repeats: the
  # server middleware makes two or three reports per job on the job's thread, so this is the
  # gem's hottest code.
  module Report
    QUEUED = "queued"
    STARTED = "started"
    COMPLETE = "complete"
    FAILED = "failed"
    MAX_ERROR_MESSAGE = 1_000
    # What JSON must escape in a String: ASCII text without these is written as it is. Jids are
    # 24 hex digits when Sidekiq makes them (searching for an escape is cheaper than matching
    # the whole jid against a pattern).
    ESCAPED = /["\\\x00-\x1f]/.freeze
    # A class and its queue repeat from job to job: the members they make are kept, up to this
    # many pairs.
    NAMES_KEPT = 10_000
    JSON_STATE = :sidekiq_supervisor_json_state
    # Keys of Sidekiq's job hash that the payload member leaves out: the report carries args and
    # queue itself, and Sidekiq writes the others anew for each push or run.
    PER_RUN_KEYS = %w[args queue jid created_at enqueued_at at retry_count retried_at failed_at
                      error_message error_class error_backtrace discarded_at].to_h { |key| [key, true] }.freeze
    # Keys of a job that sends no payload (when its retry is true).
    PLAIN_KEYS = PER_RUN_KEYS.merge("class" => true, "retry" => true).freeze
    # job_class => { queue => the members from job_class's to arguments' key }
    NAMES = {} # rubocop:disable Style/MutableConstant -- a cache; CRuby's GVL makes Hash#[]= safe here

    class << self
      # Epoch seconds as a Float with sub-second precision: the wall clock, since the
      # supervisor compares times reported by different hosts.
      def now
        ::Process.clock_gettime(::Process::CLOCK_REALTIME)
      end

      # The wall clock now as the JSON text of `at`: epoch seconds with six decimals, written
      # from integer microseconds (Float#to_s costs several times as much, twice per job).
      def now_text
        micros_text(::Process.clock_gettime(::Process::CLOCK_REALTIME, :microsecond))
      end

      # Epoch +micros+ (an Integer) as seconds with six decimals: 1733307000000123 gives
      # "1733307000.000123".
      def micros_text(micros)
        return micros.to_s.insert(-7, ".") if micros >= 1_000_000

        format("%.6f", micros / 1_000_000r)
      end

      # +at+ (epoch seconds, Float or Integer) as the JSON text of `at`.
      def seconds_text(at)
        micros_text((at.to_f * 1_000_000).round)
      end

      # The job's fields as JSON object members: job_id, job_class, queue and arguments.
      # One interpolation, into the one String the fields make: the jid is written as it is when
      # JSON needs no escape in it, and the members of the class and queue come from a cache.
      def fields(job, queue)
        # ActiveJob wraps every job in one class; the real one is in "wrapped" (a String in
        # Redis, possibly the Class itself inside the pushing process).
        names = names_members((job["wrapped"] || job["class"]).to_s, (queue || job["queue"]).to_s)
        # The args as Sidekiq itself writes them to Redis (Sidekiq.dump_json is JSON.generate).
        # The batch route takes them as a JSON array; the seed's routes take the same text.
        arguments = json_state.generate(job["args"] || [])
        jid = job["jid"].to_s
        return "\"job_id\":\"#{jid}\"#{names}#{arguments}" if jid.ascii_only? && !ESCAPED.match?(jid)

        "\"job_id\":#{JSON.generate(jid)}#{names}#{arguments}"
      end

      # One report: +event+, the job's +fields+, the time +at+ (epoch seconds), and +extra+
      # members (with their leading comma).
      def line(event, fields, at = now, extra = nil)
        "{\"event\":\"#{event}\",#{fields},\"at\":#{seconds_text(at)}#{extra}}"
      end

      def build(event, job, queue, at: now)
        line(event, fields(job, queue), at)
      end

      # The `worker` member of a started report (encoded once per thread by Identity).
      def worker_member
        ",\"worker\":#{Identity.worker_json}"
      end

      # The `payload` member of queued and started reports: the job hash as pushed, less args and
      # the per-run keys, so that a restart pushes the very same job (ActiveJob's wrapper class,
      # retry policy, tags, custom keys). Empty for the usual job, whose class and `retry: true`
      # are what the supervisor assumes anyway: that check costs less than encoding it.
      def payload_member(job)
        return "" if plain_job?(job)

        ",\"payload\":#{json_state.generate(job.reject { |key, _| PER_RUN_KEYS[key] })}"
      end

      def error_member(error)
        ",\"error\":#{JSON.generate({ "class" => error_class(error), "message" => error_message(error) })}"
      end

      private

      # Whether +job+ has no key but the per-run ones, class, and retry: true (or no retry).
      def plain_job?(job)
        job.each_key { |key| return false unless PLAIN_KEYS[key] }
        retry_value = job["retry"]
        retry_value.nil? ? !job.key?("retry") : retry_value == true
      end

      # A generator of this thread's own (JSON.generate makes one per call, and the generator
      # is not safe to share: to_json methods of the args may switch threads midway).
      def json_state
        Thread.current[JSON_STATE] ||= JSON::State.new
      end

      # The members `,"job_class":…,"queue":…,"arguments":` (the arguments' value follows).
      def names_members(job_class, queue)
        by_queue = NAMES[job_class]
        by_queue&.[](queue) || begin
          members = ",\"job_class\":#{JSON.generate(job_class)},\"queue\":#{JSON.generate(queue)},\"arguments\":"
          if @names_kept.to_i < NAMES_KEPT
            @names_kept = @names_kept.to_i + 1
            (by_queue || (NAMES[job_class.dup.freeze] = {}))[queue.dup.freeze] = members.freeze
          end
          members
        end
      end

      def error_class(error)
        error.class.name || error.class.inspect
      end

      def error_message(error)
        utf8(error.message.to_s)[0, MAX_ERROR_MESSAGE]
      rescue StandardError
        "(the error's message could not be read)"
      end

      # JSON wants UTF-8; messages quote whatever the job handled, bytes included.
      def utf8(text)
        case text.encoding
        when Encoding::UTF_8 then text.scrub
        when Encoding::BINARY then text.dup.force_encoding(Encoding::UTF_8).scrub
        else text.encode(Encoding::UTF_8, invalid: :replace, undef: :replace)
        end
      end
    end
  end
end
