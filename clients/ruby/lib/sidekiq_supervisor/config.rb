# frozen_string_literal: true

require "logger"
require "uri"

module SidekiqSupervisor
  # Settings: read from the environment, changed with SidekiqSupervisor.configure.
  # A reporter copies what it needs when it is built, so a change takes effect through
  # configure (which builds a new reporter), never halfway through a batch.
  class Config
    EVENTS_PATH = "/api/v1/events"
    # The service refuses a larger batch with 413 (SUPERVISOR_MAX_BATCH_REPORTS).
    MAX_BATCH_SIZE = 5_000
    MODES = %i[async sync].freeze
    # The service's app names: {host}/apps/NAME/ is the app NAME's (its unprefixed URLs, the
    # default app's).
    APP_PATTERN = "[a-z0-9][a-z0-9_-]{0,62}"
    APP_NAME = /\A#{APP_PATTERN}\z/.freeze

    DEFAULTS = {
      host: nil,                        # SIDEKIQ_SUPERVISOR_HOST, e.g. http://supervisor.internal:8000
      app: nil,                         # SIDEKIQ_SUPERVISOR_APP: reports go to {host}/apps/{app}/...
      token: nil,                       # SIDEKIQ_SUPERVISOR_TOKEN; else the password of the host URL
      mode: :async,                     # SIDEKIQ_SUPERVISOR_MODE: async (buffer + thread) or sync
      buffer_size: 10_000,              # reports kept while the supervisor is away; oldest dropped past it
      buffer_bytes: 64 * 1024 * 1024,   # the same bound in bytes: arguments may weigh up to 64 KiB each
      batch_size: 500,                  # most reports in one request (at most MAX_BATCH_SIZE)
      max_request_bytes: 1_000_000,     # most bytes in one request body; the service takes up to 1 MiB
      flush_interval: 0.5,              # seconds a report may wait for others to share its request
      open_timeout: 1.0,
      read_timeout: 2.0,
      write_timeout: 2.0,
      shutdown_timeout: 5.0,            # longest wait for the buffer to drain at shutdown and exit
      retry_base: 0.5,                  # first retry delay; doubles on each failure...
      retry_max: 30.0,                  # ...up to this
      logger: nil                       # default: Sidekiq.logger when Sidekiq is loaded, else $stderr
    }.freeze

    attr_accessor(*(DEFAULTS.keys - [:app]))
    attr_reader :app

    def self.from_env(env = ENV)
      new.tap do |config|
        config.host = present(env["SIDEKIQ_SUPERVISOR_HOST"])
        config.token = present(env["SIDEKIQ_SUPERVISOR_TOKEN"])
        # Not through app=, which raises: a bad name from the environment turns reporting off
        # (#problem) instead of failing inside Sidekiq's boot or a job.
        config.instance_variable_set(:@app, present(env["SIDEKIQ_SUPERVISOR_APP"]))
        mode = present(env["SIDEKIQ_SUPERVISOR_MODE"])
        config.mode = mode if mode
      end
    end

    def self.present(value)
      value = value.to_s.strip
      value.empty? ? nil : value
    end

    def initialize
      DEFAULTS.each { |name, value| public_send("#{name}=", value) }
    end

    # The supervisor app the reports are for; nil (or blank) is the default app. A name the
    # service cannot have raises ArgumentError at once.
    def app=(name)
      name = self.class.present(name)
      raise ArgumentError, "sidekiq-supervisor: #{app_name_problem(name)}" if name && !APP_NAME.match?(name)

      @app = name
    end

    # Whether reports go anywhere: without a usable host (and app) the middlewares only yield.
    def enabled?
      problem.nil?
    end

    # Why the host (or the app) cannot be used, or nil.
    def problem
      return "SIDEKIQ_SUPERVISOR_HOST is not set" if self.class.present(host).nil?
      return "SIDEKIQ_SUPERVISOR_HOST #{redacted_host.inspect} is not an http(s) URL" unless host_uri

      app_problem
    end

    # Why the app setting cannot be used, or nil: a name the service cannot have, or one other
    # than the app the host's path already names (http://host/apps/NAME).
    def app_problem
      return nil if app.nil?
      return app_name_problem(app) unless APP_NAME.match?(app)

      named = host_app
      return nil if named.nil? || named == app

      "app (SIDEKIQ_SUPERVISOR_APP) #{app.inspect} differs from the app the host names: " \
        "#{redacted_host.inspect} ends with /apps/#{named}; set the app in one place, or the same in both"
    end

    # Raises ArgumentError when the app setting cannot be used (SidekiqSupervisor.configure).
    def validate!
      problem = app_problem
      raise ArgumentError, "sidekiq-supervisor: #{problem}" if problem
    end

    # The batch route, without the credentials a host URL may carry: {host}/api/v1/events, or
    # {host}/apps/{app}/api/v1/events (once: a host that already ends with /apps/{app} keeps it).
    def endpoint
      uri = host_uri or return nil
      return nil if app_problem

      path = host_path(uri)
      path += "/apps/#{app}" if app && host_app.nil?
      URI.parse("#{uri.scheme}://#{uri.host}:#{uri.port}#{path}#{EVENTS_PATH}")
    end

    # The configured token, else the password of the host URL (http://user:TOKEN@host),
    # else its user when it has no password (http://TOKEN@host).
    def bearer_token
      explicit = self.class.present(token)
      return explicit if explicit

      uri = host_uri or return nil
      from_url = uri.password || uri.user
      from_url && !from_url.empty? ? percent_decode(from_url) : nil
    end

    def sync?
      normalized_mode == :sync
    end

    # :async or :sync; anything else is :async (the safe one).
    def normalized_mode
      wanted = mode.to_s.strip.downcase.to_sym
      MODES.include?(wanted) ? wanted : :async
    end

    def known_mode?
      MODES.include?(mode.to_s.strip.downcase.to_sym)
    end

    def effective_batch_size
      batch_size.to_i.clamp(1, MAX_BATCH_SIZE)
    end

    def effective_logger
      return logger if logger
      return ::Sidekiq.logger if defined?(::Sidekiq) && ::Sidekiq.respond_to?(:logger)

      self.class.stderr_logger
    end

    def self.stderr_logger
      @stderr_logger ||= Logger.new($stderr)
    end

    private

    def host_uri
      text = self.class.present(host) or return nil
      # "supervisor.internal:8000" is as clear as it needs to be.
      text = "http://#{text}" unless text.include?("://")
      uri = URI.parse(text)
      %w[http https].include?(uri.scheme) && uri.host && !uri.host.empty? ? uri : nil
    rescue URI::Error
      nil
    end

    def host_path(uri)
      uri.path.to_s.sub(%r{/+\z}, "")
    end

    # The app the host's path ends with (http://host/apps/NAME), or nil.
    def host_app
      uri = host_uri or return nil
      host_path(uri)[%r{/apps/([^/]+)\z}, 1]
    end

    def app_name_problem(name)
      "app (SIDEKIQ_SUPERVISOR_APP) #{name.inspect} is not an app name: it must match #{APP_PATTERN}"
    end

    def redacted_host
      host.to_s.sub(%r{//[^/@]*@}, "//***@")
    end

    def percent_decode(text)
      text.gsub(/%\h\h/) { |escape| escape[1, 2].hex.chr }.force_encoding(Encoding::UTF_8)
    end
  end
end
