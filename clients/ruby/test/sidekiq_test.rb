# frozen_string_literal: true

require "test_helper"

# The gem inside processes that load the installed Sidekiq (Debian's ruby-sidekiq, 6.4.1),
# each a child process so that this suite's process stays Sidekiq-free. No Sidekiq process is
# started and no Redis is needed: the chains are invoked directly, as Sidekiq invokes them.
class SidekiqTest < SupervisorTest
  # Chains and lifecycle hooks as the installed Sidekiq holds them (6.x globals or 7+ config).
  PROBE = <<~RUBY
    def sidekiq_state
      config = Sidekiq.respond_to?(:default_configuration) ? Sidekiq.default_configuration : Sidekiq
      events = config.respond_to?(:options) ? config.options[:lifecycle_events] : config[:lifecycle_events]
      {
        "version" => Sidekiq::VERSION,
        "server" => Sidekiq.server? ? true : false,
        "client_chain" => config.client_middleware.map { |entry| entry.klass.name },
        "server_chain" => config.server_middleware.map { |entry| entry.klass.name },
        "shutdown_hooks" => events[:shutdown].size,
        "identity_source" => SidekiqSupervisor::Identity.source
      }
    end
  RUBY

  def setup
    super
    skip "needs the sidekiq gem (Debian: apt-get install ruby-sidekiq)" unless SupervisorTestHelpers.sidekiq_available?
  end

  def run_json(script, env: {})
    stdout, stderr, status = run_ruby(script, env: env)
    assert status.success?, "child failed:\n#{stderr}"
    JSON.parse(stdout.lines.last)
  end

  def test_an_app_process_gets_the_client_middleware_on_require
    state = run_json(<<~RUBY)
      require "json"
      require "sidekiq"
      require "sidekiq_supervisor"
      #{PROBE}
      SidekiqSupervisor.install! # a second install changes nothing
      puts JSON.generate(sidekiq_state)
    RUBY

    assert_equal false, state["server"]
    assert_equal ["SidekiqSupervisor::ClientMiddleware"], state["client_chain"]
    assert_equal [], state["server_chain"]
    assert_equal 0, state["shutdown_hooks"]
  end

  def test_a_sidekiq_server_gets_both_middlewares_and_a_shutdown_hook_whatever_the_require_order
    ["require \"sidekiq/cli\"\nrequire \"sidekiq_supervisor\"",
     "require \"sidekiq_supervisor\"\nrequire \"sidekiq/cli\"\nSidekiqSupervisor.install!"].each do |requires|
      state = run_json(<<~RUBY)
        require "json"
        # The sidekiq executable loads Sidekiq::CLI before the app, which makes Sidekiq.server? true.
        #{requires}
        #{PROBE}
        puts JSON.generate(sidekiq_state)
      RUBY

      assert_equal true, state["server"]
      assert_equal ["SidekiqSupervisor::ClientMiddleware"], state["client_chain"], "jobs push jobs"
      assert_equal ["SidekiqSupervisor::ServerMiddleware"], state["server_chain"]
      assert_equal 1, state["shutdown_hooks"]
    end
  end

  def test_jobs_run_through_sidekiqs_chains_are_reported_with_sidekiqs_own_identity_and_tid
    server = start_server
    result = run_json(<<~RUBY, env: { "SIDEKIQ_SUPERVISOR_HOST" => server.url })
      require "json"
      require "sidekiq/cli"
      require "sidekiq_supervisor"
      #{PROBE}
      SidekiqSupervisor.configure { |c| c.flush_interval = 30 } # only the :shutdown hook sends

      class HardWorker
        include Sidekiq::Worker
        def perform(*); end
      end

      def job(jid)
        { "class" => "HardWorker", "args" => [jid, "alice@example.com"], "jid" => jid, "queue" => "default",
          "retry" => true }
      end

      # What the processor does: the server chain around perform, on the job's thread.
      Sidekiq.server_middleware.invoke(HardWorker.new, job("ok"), "default") { :performed }
      original = ArgumentError.new("bad input")
      raised = begin
        Sidekiq.server_middleware.invoke(HardWorker.new, job("boom"), "default") { raise original }
      rescue ArgumentError => e
        e
      end
      shutdown = begin
        Sidekiq.server_middleware.invoke(HardWorker.new, job("cut"), "default") { raise Sidekiq::Shutdown }
      rescue Sidekiq::Shutdown
        true
      end
      # A job enqueuing a job: the client chain of the server process.
      pushed = Sidekiq.client_middleware.invoke("HardWorker", job("child"), "default", nil) { :pushed }

      util = Object.new.extend(Sidekiq::Util)
      expected = { "identity" => util.identity, "hostname" => util.hostname, "pid" => Process.pid,
                   "thread" => util.tid }
      # Sidekiq's manager fires :shutdown this way when the process stops.
      util.fire_event(:shutdown, reverse: true)
      $stdout.puts JSON.generate(sidekiq_state.merge(
        "expected_worker" => expected, "same_exception" => raised.equal?(original),
        "shutdown_propagated" => shutdown, "pushed" => pushed.to_s
      ))
      $stdout.flush
      exit!(0) # skip at_exit: what the server has, the :shutdown hook sent
    RUBY

    assert_equal "Sidekiq::Util", result["identity_source"]
    assert result["same_exception"], "the job's exception must reach Sidekiq unchanged"
    assert result["shutdown_propagated"]
    assert_equal "pushed", result["pushed"]
    events = server.delivered_events
    assert_equal [%w[started ok], %w[complete ok], %w[started boom], %w[failed boom], %w[started cut],
                  %w[queued child]], events.map { |e| [e["event"], e["job_id"]] }
    expected = result["expected_worker"]
    assert_match(/\A[^:]+:#{expected["pid"]}:\h{12}\z/, expected["identity"])
    events.select { |e| e["event"] == "started" }.each { |e| assert_equal expected, e["worker"] }
    assert_equal({ "class" => "ArgumentError", "message" => "bad input" }, events[3]["error"])
    assert_equal ["ok", "alice@example.com"], events[0]["arguments"]
  end

  def test_a_real_sidekiq_client_push_is_reported_queued
    server = start_server
    result = run_json(<<~RUBY, env: { "SIDEKIQ_SUPERVISOR_HOST" => server.url })
      require "json"
      require "sidekiq"
      require "sidekiq/testing"
      Sidekiq::Testing.fake! # the push stops short of Redis; the client chain runs as usual
      require "sidekiq_supervisor"

      class MailerWorker
        include Sidekiq::Worker
        sidekiq_options queue: "mailers"
        def perform(*); end
      end

      jid = MailerWorker.perform_async(7, "bob@example.com")
      SidekiqSupervisor.flush(3)
      puts JSON.generate("jid" => jid, "jobs" => MailerWorker.jobs.size)
    RUBY

    assert_equal 1, result["jobs"]
    event = server.delivered_events.fetch(0)
    assert_equal({ "event" => "queued", "job_id" => result["jid"], "job_class" => "MailerWorker",
                   "queue" => "mailers", "arguments" => [7, "bob@example.com"] }, event.reject { |k, _| k == "at" })
  end
end

# Sidekiq 6.5+, 7 and 8 differ from 6.4 in what the gem touches: the middleware modules, the
# Sidekiq::Component helpers, a Sidekiq::Config in place of the Sidekiq module, and 8's :exit
# event. This stand-in has exactly that API surface (copied from the 7.x/8.x sources), so that
# those code paths run without a newer Sidekiq installed.
class NewerSidekiqApiTest < SupervisorTest
  STAND_IN = <<~RUBY
    require "socket"
    module Sidekiq
      VERSION = "8.0.0-stand-in"
      module ServerMiddleware
        attr_accessor :config
      end
      ClientMiddleware = ServerMiddleware

      module Component
        def tid
          Thread.current["sidekiq_tid"] ||= (Thread.current.object_id ^ ::Process.pid).to_s(36)
        end

        def hostname
          ENV["DYNO"] || Socket.gethostname
        end

        def process_nonce
          @@process_nonce ||= "0123456789ab"
        end

        def identity
          @@identity ||= "\#{hostname}:\#{::Process.pid}:\#{process_nonce}"
        end
      end

      class Chain
        Entry = Struct.new(:klass)

        def entries
          @entries ||= []
        end

        def prepend(klass)
          entries.reject! { |entry| entry.klass == klass }
          entries.unshift(Entry.new(klass))
        end
      end

      class Config
        attr_reader :events

        def initialize
          @events = { startup: [], quiet: [], shutdown: [], exit: [], heartbeat: [], beat: [] }
        end

        def client_middleware
          @client ||= Chain.new
          yield @client if block_given?
          @client
        end

        def server_middleware
          @server ||= Chain.new
          yield @server if block_given?
          @server
        end

        def on(event, &block)
          raise ArgumentError, "Invalid event name: \#{event}" unless @events.key?(event)

          @events[event] << block
        end
      end

      def self.default_configuration
        @config ||= Config.new
      end

      def self.server?
        true
      end

      def self.configure_server
        yield default_configuration if server?
      end

      def self.configure_client
        yield default_configuration unless server?
      end
    end
  RUBY

  def test_modules_component_identity_and_the_exit_event_are_used_when_present
    stdout, stderr, status = run_ruby(<<~RUBY)
      require "json"
      require "sidekiq_supervisor" # before Sidekiq, as a Gemfile may order it
      #{STAND_IN}
      SidekiqSupervisor.install!
      SidekiqSupervisor.install!
      config = Sidekiq.default_configuration
      puts JSON.generate(
        "client_chain" => config.client_middleware.entries.map { |e| e.klass.name },
        "server_chain" => config.server_middleware.entries.map { |e| e.klass.name },
        "client_module" => SidekiqSupervisor::ClientMiddleware.include?(Sidekiq::ClientMiddleware),
        "server_module" => SidekiqSupervisor::ServerMiddleware.include?(Sidekiq::ServerMiddleware),
        "hooks" => config.events.transform_values(&:size),
        "source" => SidekiqSupervisor::Identity.source,
        "worker" => SidekiqSupervisor::Identity.worker,
        "tid" => Object.new.extend(Sidekiq::Component).tid
      )
    RUBY

    assert status.success?, stderr
    state = JSON.parse(stdout)
    assert_equal ["SidekiqSupervisor::ClientMiddleware"], state["client_chain"]
    assert_equal ["SidekiqSupervisor::ServerMiddleware"], state["server_chain"]
    assert state["client_module"] && state["server_module"]
    assert_equal 1, state["hooks"]["shutdown"]
    assert_equal 1, state["hooks"]["exit"]
    assert_equal "Sidekiq::Component", state["source"]
    assert_match(/:0123456789ab\z/, state["worker"]["identity"])
    assert_equal state["tid"], state["worker"]["thread"]
  end
end
