# frozen_string_literal: true

# The local supervisor stand-in and the child processes talk over 127.0.0.1: no proxy.
%w[http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY].each { |name| ENV.delete(name) }
# The suite decides what the gem reads from the environment.
ENV.keys.grep(/\ASIDEKIQ_SUPERVISOR_/).each { |name| ENV.delete(name) }

require "minitest/autorun"
require "logger"
require "open3"
require "rbconfig"
require "socket"
require "stringio"
require "timeout"
require "sidekiq_supervisor"
require_relative "support/supervisor_server"

module SupervisorTestHelpers
  LIB = File.expand_path("../lib", __dir__)

  def setup
    super
    SidekiqSupervisor.reset!
    @servers = []
    @reporters = []
    @log = StringIO.new
  end

  def teardown
    SidekiqSupervisor.reset!
    @reporters.each { |reporter| reporter.shutdown(0) }
    @servers.each(&:stop)
    super
  end

  def start_server(**options)
    SupervisorServer.new(**options).tap { |server| @servers << server }
  end

  def logger
    Logger.new(@log).tap { |l| l.formatter = proc { |severity, _, _, message| "#{severity} #{message}\n" } }
  end

  def log_text
    @log.string
  end

  # Settings that keep the suite quick: short waits, short timeouts.
  def fast_config(host, **overrides)
    SidekiqSupervisor::Config.new.tap do |config|
      config.host = host
      config.flush_interval = 0.02
      config.retry_base = 0.02
      config.retry_max = 0.2
      config.open_timeout = 0.5
      config.read_timeout = 0.5
      config.write_timeout = 0.5
      config.shutdown_timeout = 3
      config.logger = logger
      overrides.each { |name, value| config.public_send("#{name}=", value) }
    end
  end

  def build_reporter(host, **overrides)
    SidekiqSupervisor::Reporter.new(fast_config(host, **overrides)).tap { |r| @reporters << r }
  end

  # The global configuration the middlewares use.
  # (A configure call flushes the reporter it replaces; tests do not wait for that.)
  def configure_global(host, **overrides)
    SidekiqSupervisor.reset!
    fast = fast_config(host, **overrides)
    SidekiqSupervisor.configure do |config|
      SidekiqSupervisor::Config::DEFAULTS.each_key { |name| config.public_send("#{name}=", fast.public_send(name)) }
    end
  end

  def job(jid: "a1b2c3d4e5f6a1b2c3d4e5f6", klass: "HardWorker", args: [1, "alice@example.com"], **extra)
    { "class" => klass, "args" => args, "jid" => jid, "queue" => "default", "retry" => true }
      .merge(extra.transform_keys(&:to_s))
  end

  def report(index, event: "queued")
    SidekiqSupervisor::Report.build(event, job(jid: format("%024x", index), args: [index]), "default")
  end

  # A port on which nothing listens (yet).
  def closed_port
    server = TCPServer.new("127.0.0.1", 0)
    server.addr[1]
  ensure
    server&.close
  end

  def monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  def wait_until(timeout: 5)
    deadline = monotonic + timeout
    sleep 0.01 until yield || monotonic > deadline
    yield
  end

  # Runs a Ruby script in a child process with the gem on its load path.
  def run_ruby(script, env: {}, timeout: 15)
    command = [RbConfig.ruby, "-I", LIB, "-e", script]
    stdout = stderr = status = nil
    Timeout.timeout(timeout) { stdout, stderr, status = Open3.capture3(env, *command) }
    [stdout, stderr, status]
  end

  def self.sidekiq_available?
    return @sidekiq_available unless @sidekiq_available.nil?

    @sidekiq_available = system(RbConfig.ruby, "-e", 'require "sidekiq"', out: File::NULL, err: File::NULL)
  end

  # Sidekiq::VERSION as the child processes load it (RUBYOPT may select a line), or nil.
  def self.sidekiq_version
    return @sidekiq_version if defined?(@sidekiq_version)

    @sidekiq_version = if sidekiq_available?
                         out, status = Open3.capture2(RbConfig.ruby, "-e", 'require "sidekiq"; print Sidekiq::VERSION')
                         out if status.success?
                       end
  end
end

# Base class of the suite's tests: a clean global state, and servers and reporters that stop.
class SupervisorTest < Minitest::Test
  include SupervisorTestHelpers
end

# Which Sidekiq the Sidekiq tests load, said once (tests/test_ruby_gem.py checks it is the line
# it asked for with SIDEKIQ_LINE).
line = ENV.fetch("SIDEKIQ_LINE", "unset")
puts "Sidekiq under test: #{SupervisorTestHelpers.sidekiq_version || "none"} (SIDEKIQ_LINE=#{line})"
