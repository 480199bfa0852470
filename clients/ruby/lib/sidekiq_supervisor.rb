# frozen_string_literal: true

require "monitor"
require_relative "sidekiq_supervisor/version"
require_relative "sidekiq_supervisor/config"
require_relative "sidekiq_supervisor/identity"
require_relative "sidekiq_supervisor/report"
require_relative "sidekiq_supervisor/job_reports"
require_relative "sidekiq_supervisor/reporter"
require_relative "sidekiq_supervisor/client_middleware"
require_relative "sidekiq_supervisor/server_middleware"

# Reports every Sidekiq job's queued, started, complete and failed events to a
# sidekiq-supervisor service. `require "sidekiq_supervisor"` after Sidekiq installs both
# middlewares; SIDEKIQ_SUPERVISOR_HOST says where the service is.
module SidekiqSupervisor
  LOCK = Monitor.new

  class << self
    def config
      LOCK.synchronize { @config ||= Config.from_env }
    end

    # SidekiqSupervisor.configure { |c| c.host = "http://supervisor.internal:8000" }
    # The next report uses the new settings (a reporter built earlier is flushed and stopped).
    # Raises ArgumentError when the block sets a host and an app that do not go together (app=
    # itself raises for a bad name): a mistake in an initializer fails the boot. A mistake read
    # from the environment, which the block left alone, only turns reporting off.
    def configure
      app_set = nil
      retired = LOCK.synchronize do
        before = [config.host, config.app]
        yield config
        app_set = before != [config.host, config.app]
        forget_reporter
      end
      # Outside the lock: job threads must not wait for the old reporter's flush.
      retired&.shutdown(config.shutdown_timeout)
      config.validate! if app_set
      config
    end

    # Whether reports are sent anywhere (a host is configured).
    def enabled?
      !active_reporter.nil?
    end

    # The reporter, or nil when nothing is reported; never raises. Cheap: the client middleware
    # asks once per push, and passes it to #report_queued.
    def active_reporter
      reporter
    rescue StandardError
      nil
    end

    # Records one event of +job+ (Sidekiq's job hash) that happened +at+ (default: now).
    # Never raises.
    def report(event, job, queue, at: nil)
      target = reporter or return
      fields = Report.fields(job, queue)
      extra = case event
              when Report::STARTED then Report.worker_member + Report.payload_member(job)
              when Report::QUEUED then Report.payload_member(job)
              end
      target.record(Report.line(event, fields, at || Report.now, extra))
    rescue StandardError => e
      log_report_error("could not report #{event}: #{e.class}: #{e.message}")
    end

    # Records that +job+ was pushed to +queue+ at +at_text+ (Report.now_text, taken before the
    # push) with +target+ (#active_reporter). Never raises.
    def report_queued(target, job, queue, at_text)
      target.record("{\"event\":\"queued\",#{Report.fields(job, queue)},\"at\":#{at_text}" \
                    "#{Report.payload_member(job)}}")
    rescue StandardError => e
      log_report_error("could not report queued: #{e.class}: #{e.message}")
    end

    # The reports of one run of +job+, sharing its encoded fields; nil when nothing is
    # reported (no host configured) or the job cannot be encoded. Never raises.
    def job_reports(job, queue)
      target = reporter or return
      JobReports.new(target, job, queue)
    rescue StandardError => e
      log_report_error("could not report #{job.is_a?(Hash) ? job["jid"] : "a job"}: #{e.class}: #{e.message}")
      nil
    end

    # The reporter of this process, built on first use; nil when no host is configured.
    # After a fork the child gets its own: the parent's thread, connection and buffer (whose
    # reports the parent sends) are not the child's.
    def reporter
      current = @reporter
      return current if current && current.pid == ::Process.pid
      return nil if @disabled

      LOCK.synchronize do
        @reporter = nil if @reporter && @reporter.pid != ::Process.pid
        @reporter ||= build_reporter
      end
    end

    # Waits (at most +timeout+ seconds, default shutdown_timeout) for the buffered reports to
    # be delivered. True when they were.
    def flush(timeout = nil)
      current = live_reporter or return true
      current.flush(timeout || config.shutdown_timeout)
    end

    # Flushes, then stops the sender. Runs at Sidekiq's shutdown and at process exit.
    def shutdown(timeout = nil)
      current = live_reporter or return true
      current.shutdown(timeout || config.shutdown_timeout)
    end

    # Reports dropped because the buffer was full (exposed for metrics and health checks).
    def dropped_count
      live_reporter&.dropped_count || 0
    end

    def stats
      live_reporter&.stats || {}
    end

    # Adds the middlewares to Sidekiq's chains: the client middleware wherever jobs are
    # pushed (the app, and Sidekiq servers, whose jobs push jobs), the server middleware in
    # Sidekiq servers; and flushes on Sidekiq's shutdown. Idempotent. Works with the
    # configure_client/configure_server API of Sidekiq 6, 7 and 8.
    #
    # Prepending puts us outermost: `started` is recorded before other middleware runs, a
    # failure raised by any of them is a failed job (as Sidekiq counts it), and a push that
    # a later client middleware vetoes is not reported as queued.
    def install!
      return false unless defined?(::Sidekiq) && ::Sidekiq.respond_to?(:configure_server)

      add_to_chains
      true
    rescue StandardError => e
      # An unexpected Sidekiq must not stop the app from booting: it runs unreported.
      config.effective_logger.error("sidekiq-supervisor: could not install the middlewares: " \
                                    "#{e.class}: #{e.message}")
      false
    end

    # Forgets the configuration and the reporter (stopping it). For tests.
    def reset!(timeout = 0)
      retired = LOCK.synchronize do
        @config = nil
        forget_reporter
      end
      retired&.shutdown(timeout)
    end

    # Logs a report that could not be made (throttled: a broken job shape repeats per job).
    def log_report_error(message)
      @throttle ||= LogThrottle.new
      config.effective_logger.error("sidekiq-supervisor: #{message}") if @throttle.allow?(:report)
    rescue StandardError
      nil
    end

    private

    def build_reporter
      problem = config.problem
      if problem
        @disabled = true
        announce("#{problem}: jobs run as usual, nothing is reported")
        return nil
      end
      unless config.known_mode?
        config.effective_logger.warn("sidekiq-supervisor: unknown mode #{config.mode.inspect}; using async")
      end
      register_at_exit
      Reporter.new(config)
    end

    def live_reporter
      current = @reporter
      current if current && current.pid == ::Process.pid
    end

    # Drops the reporter so that the next report builds one from the current settings;
    # returns the dropped one (of this process) for the caller to shut down.
    def forget_reporter
      current = live_reporter
      @reporter = nil
      @disabled = false
      @announced = false
      current
    end

    def add_to_chains
      adopt_sidekiq_modules
      ::Sidekiq.configure_client do |sidekiq|
        sidekiq.client_middleware { |chain| chain.prepend(ClientMiddleware) }
      end
      ::Sidekiq.configure_server do |sidekiq|
        sidekiq.client_middleware { |chain| chain.prepend(ClientMiddleware) }
        sidekiq.server_middleware { |chain| chain.prepend(ServerMiddleware) }
        copied_capsule_chains(sidekiq).each do |client, server|
          client&.prepend(ClientMiddleware)
          server&.prepend(ServerMiddleware)
        end
        hook_lifecycle(sidekiq)
      end
    end

    # Sidekiq 7+ runs each capsule's jobs through the capsule's own chains, copies of the
    # config's made the first time the capsule asks for them. A capsule declared (and its
    # chain asked for) before we were installed holds a copy without us: add us there too.
    # A chain not copied yet is left alone, so that it copies the config's chain, with us and
    # with whatever the app adds later. Sidekiq 6 has no capsules. [[client, server]], nil
    # for a chain not copied.
    def copied_capsule_chains(sidekiq)
      return [] unless sidekiq.respond_to?(:capsules) && sidekiq.capsules.respond_to?(:each_value)

      sidekiq.capsules.each_value.map do |capsule|
        [copied_chain(capsule, :@client_chain), copied_chain(capsule, :@server_chain)]
      end
    end

    def copied_chain(capsule, name)
      capsule.instance_variable_get(name) if capsule.instance_variable_defined?(name)
    end

    def hook_lifecycle(sidekiq)
      return unless sidekiq.respond_to?(:on)

      @hooked ||= {}.compare_by_identity
      return if @hooked[sidekiq]

      @hooked[sidekiq] = true
      # Sidekiq fires :shutdown while the last jobs may still be finishing (every line; 6.x
      # from its manager, 7+ from the launcher): send what is buffered now and keep the sender
      # for their reports; at_exit sends the rest.
      sidekiq.on(:shutdown) { SidekiqSupervisor.flush }
      begin
        # Sidekiq 8.0.2+ fires :exit once every job is done. A flush, not a shutdown: an
        # embedded Sidekiq (7+) stops inside a process that lives on and still pushes jobs;
        # at_exit stops the sender.
        sidekiq.on(:exit) { SidekiqSupervisor.flush }
      rescue ArgumentError
        nil # no :exit event before Sidekiq 8.0.2
      end
    end

    # Middleware classes defined before Sidekiq was loaded include its modules now.
    def adopt_sidekiq_modules
      if defined?(::Sidekiq::ClientMiddleware) && !(ClientMiddleware < ::Sidekiq::ClientMiddleware)
        ClientMiddleware.include(::Sidekiq::ClientMiddleware)
      end
      return unless defined?(::Sidekiq::ServerMiddleware) && !(ServerMiddleware < ::Sidekiq::ServerMiddleware)

      ServerMiddleware.include(::Sidekiq::ServerMiddleware)
    end

    def register_at_exit
      return if @at_exit_registered

      @at_exit_registered = true
      at_exit { SidekiqSupervisor.shutdown }
    end

    def announce(message)
      return if @announced

      @announced = true
      config.effective_logger.warn("sidekiq-supervisor: #{message}")
    rescue StandardError
      nil
    end
  end
end

SidekiqSupervisor.install! if defined?(Sidekiq)
