# frozen_string_literal: true

require "json"
require "socket"

module SidekiqSupervisor
  # Who runs a job, in Sidekiq's own terms, so that a `started` report can be matched with
  # Sidekiq's Redis: the process identity it SADDs to the `processes` set
  # (`hostname:pid:nonce`) and the thread id that keys the process's work hash.
  #
  # Sources, first one that answers wins:
  #   1. Sidekiq::Component (Sidekiq 6.5, 7.x, 8.x) - the module whose #identity and #tid the
  #      launcher and the processors themselves call;
  #   2. Sidekiq::Util (Sidekiq 6.0 to 6.4) - the same methods before 6.5;
  #   3. our copy of their formulas for the hostname and the thread id (exact). The identity
  #      is then nil: its random nonce lives only in a class variable of those modules, and a
  #      made-up identity would name a process that never beats. The supervisor finds the
  #      process from hostname and pid instead (the identity starts with `hostname:pid:`).
  #
  # Using Sidekiq's own methods returns the very strings Sidekiq writes: #identity is memoised
  # in a class variable of that module, shared by every object that includes it, and #tid in
  # the fiber-local Thread.current["sidekiq_tid"]. Both are read on the job's own thread.
  module Identity
    TID_KEY = "sidekiq_tid"
    CACHE_KEY = :sidekiq_supervisor_worker

    class << self
      # The `worker` object of a `started` report, for the current thread.
      def worker
        current[1]
      end

      # The same, as JSON text. +pid+: this process's id, when the caller has just read it.
      def worker_json(pid = ::Process.pid)
        current(pid)[2]
      end

      # The end of a `started` report without a payload: its `worker` member and the closing
      # brace, kept with the JSON so that each such report appends it as it is.
      def started_tail(pid = ::Process.pid)
        current(pid)[3]
      end

      # Which of Sidekiq's modules answers, for tests and for the curious.
      def source
        sidekiq_module&.name || "fallback"
      end

      private

      # [pid, worker, its JSON, the started tail]. A thread's worker never changes within a
      # process, so it is built once per thread (again after a fork), as soon as Sidekiq knows
      # its identity.
      def current(pid = ::Process.pid)
        cached = Thread.current[CACHE_KEY]
        return cached if cached && cached[0] == pid

        worker = describe_worker.freeze
        json = JSON.generate(worker)
        fresh = [::Process.pid, worker, json, ",\"worker\":#{json}}"].freeze
        Thread.current[CACHE_KEY] = fresh if worker["identity"]
        fresh
      end

      def describe_worker
        helper = sidekiq_helper
        {
          "identity" => call(helper, :identity),
          "hostname" => call(helper, :hostname) || fallback_hostname,
          "pid" => ::Process.pid,
          "thread" => call(helper, :tid) || fallback_tid
        }
      end

      def sidekiq_module
        if defined?(::Sidekiq::Component) && ::Sidekiq::Component.method_defined?(:identity)
          ::Sidekiq::Component
        elsif defined?(::Sidekiq::Util) && ::Sidekiq::Util.method_defined?(:identity)
          ::Sidekiq::Util
        end
      end

      # An object that has Sidekiq's helper methods, one per module (Sidekiq may be loaded
      # after us, and 6.x apps never have Component).
      def sidekiq_helper
        mod = sidekiq_module or return nil
        @helpers ||= {}
        @helpers[mod] ||= Object.new.extend(mod)
      end

      def call(helper, name)
        value = helper&.public_send(name)
        value.nil? ? nil : value.to_s
      rescue StandardError
        nil # a future Sidekiq may need its config here: fall back rather than fail the report
      end

      # util.rb@v6.4.1 and component.rb@v7.0.0..v8.1.7: ENV["DYNO"] || Socket.gethostname
      def fallback_hostname
        ENV["DYNO"] || Socket.gethostname
      end

      # Sidekiq's formula; read its memoised value first, never write it (that is Sidekiq's).
      def fallback_tid
        Thread.current[TID_KEY] || (Thread.current.object_id ^ ::Process.pid).to_s(36)
      end
    end
  end
end
