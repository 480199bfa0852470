# frozen_string_literal: true

require "json"
require_relative "identity"

module SidekiqSupervisor
  # Builds the reports of the wire contract from Sidekiq's job hash:
  #   {"event", "job_id", "job_class", "queue", "arguments", "at", "worker" (started), "error" (failed)}
  module Report
    QUEUED = "queued"
    STARTED = "started"
    COMPLETE = "complete"
    FAILED = "failed"
    MAX_ERROR_MESSAGE = 1_000

    class << self
      # Epoch seconds as a Float with sub-second precision: the wall clock, since the
      # supervisor compares times reported by different hosts.
      def now
        ::Process.clock_gettime(::Process::CLOCK_REALTIME)
      end

      def build(event, job, queue, at: now)
        {
          "event" => event,
          "job_id" => job["jid"].to_s,
          # ActiveJob wraps every job in one class; the real one is in "wrapped" (a String in
          # Redis, possibly the Class itself inside the pushing process).
          "job_class" => (job["wrapped"] || job["class"]).to_s,
          "queue" => (queue || job["queue"]).to_s,
          # JSON text, as Sidekiq itself writes args to Redis (Sidekiq.dump_json is JSON.generate).
          "arguments" => JSON.generate(job["args"] || []),
          "at" => at.to_f
        }
      end

      def started(job, queue)
        build(STARTED, job, queue).merge("worker" => Identity.worker)
      end

      def failed(job, queue, error)
        build(FAILED, job, queue).merge("error" => { "class" => error_class(error), "message" => error_message(error) })
      end

      private

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
