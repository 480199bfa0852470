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

    DEFAULTS = {
      host: nil,                        # SIDEKIQ_SUPERVISOR_HOST, e.g. http://supervisor.internal:8000
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

    attr_accessor(*DEFAULTS.keys)

    def self.from_env(env = ENV)
      new.tap do |config|
        config.host = present(env["SIDEKIQ_SUPERVISOR_HOST"])
        config.token = present(env["SIDEKIQ_SUPERVISOR_TOKEN"])
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

    # Whether reports go anywhere: without a host the middlewares only yield.
    def enabled?
      !host_uri.nil?
    end

    # Why the host cannot be used, or nil.
    def problem
      return "SIDEKIQ_SUPERVISOR_HOST is not set" if self.class.present(host).nil?
      return "SIDEKIQ_SUPERVISOR_HOST #{redacted_host.inspect} is not an http(s) URL" unless host_uri

      nil
    end

    # The batch route, without the credentials a host URL may carry.
    def endpoint
      uri = host_uri or return nil
      path = uri.path.to_s.sub(%r{/+\z}, "")
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

    def redacted_host
      host.to_s.sub(%r{//[^/@]*@}, "//***@")
    end

    def percent_decode(text)
      text.gsub(/%\h\h/) { |escape| escape[1, 2].hex.chr }.force_encoding(Encoding::UTF_8)
    end
  end
end
