# frozen_string_literal: true

require "test_helper"

# The gem inside processes that load the installed Sidekiq: Debian's ruby-sidekiq (6.4.1), or
# the 7.x or 8.x that RUBYOPT puts first (../shared/sidekiq-versions/env.sh; SIDEKIQ_LINE names
# the line), each a child process so that this suite's process stays Sidekiq-free. No Sidekiq
# process is started and no Redis is needed: the chains are invoked directly, as Sidekiq's
# processor invokes them.
class SidekiqTest < SupervisorTest
  # Chains and lifecycle hooks as the installed Sidekiq holds them (6.x globals or 7+ config),
  # and what a processor of that line uses.
  PROBE = <<~RUBY
    def sidekiq_config
      Sidekiq.respond_to?(:default_configuration) ? Sidekiq.default_configuration : Sidekiq
    end

    # The chain a processor runs jobs through: the global one on 6.x, its capsule's on 7+.
    def processor_chain(capsule = "default")
      config = sidekiq_config
      config.respond_to?(:capsule) ? config.capsule(capsule).server_middleware : config.server_middleware
    end

    # An object with Sidekiq's identity, tid and fire_event, as its launcher and processors:
    # Sidekiq::Util on 6.4, the default capsule (a Sidekiq::Component with its config) on 7+.
    def sidekiq_component
      config = sidekiq_config
      config.respond_to?(:default_capsule) ? config.default_capsule : Object.new.extend(Sidekiq::Util)
    end

    def sidekiq_state
      config = sidekiq_config
      events = config.respond_to?(:options) ? config.options[:lifecycle_events] : config[:lifecycle_events]
      {
        "version" => Sidekiq::VERSION,
        "server" => Sidekiq.server? ? true : false,
        "client_chain" => config.client_middleware.map { |entry| entry.klass.name },
        "server_chain" => config.server_middleware.map { |entry| entry.klass.name },
        "shutdown_hooks" => events[:shutdown].size,
        "exit_hooks" => events[:exit]&.size,
        "identity_source" => defined?(SidekiqSupervisor) ? SidekiqSupervisor::Identity.source : nil
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

  def version_at_least?(state, version)
    Gem::Version.new(state["version"]) >= Gem::Version.new(version)
  end

  # What Sidekiq itself puts in a server process's chains and hooks, without the gem.
  def bare_server_state
    run_json(<<~RUBY)
      require "json"
      require "sidekiq/cli"
      #{PROBE}
      puts JSON.generate(sidekiq_state)
    RUBY
  end

  def test_the_suite_runs_on_the_sidekiq_line_it_was_asked_for
    version = SupervisorTestHelpers.sidekiq_version
    assert_match(/\A\d+\.\d+\.\d+/, version)
    line = ENV.fetch("SIDEKIQ_LINE", nil)
    assert_equal line, version.split(".").first, "SIDEKIQ_LINE=#{line} but Sidekiq #{version} loads" if line
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

  def test_a_sidekiq_server_gets_both_middlewares_first_and_its_hooks_whatever_the_require_order
    bare = bare_server_state
    ["require \"sidekiq/cli\"\nrequire \"sidekiq_supervisor\"",
     "require \"sidekiq_supervisor\"\nrequire \"sidekiq/cli\"\nSidekiqSupervisor.install!"].each do |requires|
      state = run_json(<<~RUBY)
        require "json"
        # The sidekiq executable loads Sidekiq::CLI before the app, which makes Sidekiq.server? true.
        #{requires}
        SidekiqSupervisor.install! # a second install changes nothing
        #{PROBE}
        puts JSON.generate(sidekiq_state)
      RUBY

      assert_equal true, state["server"]
      # Ours first, then Sidekiq's own (7+ adds metrics and the interrupt handler), unchanged.
      assert_equal ["SidekiqSupervisor::ClientMiddleware"] + bare["client_chain"], state["client_chain"],
                   "jobs push jobs"
      assert_equal ["SidekiqSupervisor::ServerMiddleware"] + bare["server_chain"], state["server_chain"]
      assert_equal bare["shutdown_hooks"] + 1, state["shutdown_hooks"]
      if version_at_least?(state, "8.0.2")
        assert_equal bare["exit_hooks"] + 1, state["exit_hooks"], "Sidekiq 8.0.2+ fires :exit"
      else
        assert_nil state["exit_hooks"], "no :exit event before Sidekiq 8.0.2"
      end
    end
  end

  # Sidekiq 7+ runs a capsule's jobs through the capsule's copy of the config's chain, made
  # when the capsule first asks for it; 6.x has one global chain.
  def test_every_chain_a_processor_uses_runs_the_server_middleware_first
    state = run_json(<<~RUBY)
      require "json"
      require "sidekiq/cli"
      #{PROBE}
      class PassThrough
        def call(*)
          yield
        end
      end

      capsules = sidekiq_config.respond_to?(:capsule)
      if capsules
        Sidekiq.configure_server do |config|
          config.capsule("early") do |cap|
            cap.concurrency = 1
            cap.server_middleware { |chain| chain.add(PassThrough) } # copies the chain now
          end
          config.capsule("untouched") { |cap| cap.concurrency = 1 }
        end
      end
      require "sidekiq_supervisor"
      Sidekiq.configure_server { |config| config.capsule("late") { |cap| cap.concurrency = 1 } } if capsules
      names = capsules ? %w[default early untouched late] : ["global"]
      chains = names.to_h { |name| [name, processor_chain(name).map { |entry| entry.klass.name }] }
      puts JSON.generate(sidekiq_state.merge("chains" => chains))
    RUBY

    expected_names = version_at_least?(state, "7.0") ? %w[default early untouched late] : ["global"]
    assert_equal expected_names, state["chains"].keys
    state["chains"].each do |name, chain|
      assert_equal "SidekiqSupervisor::ServerMiddleware", chain.first, "#{name}: #{chain}"
      assert_equal 1, chain.count("SidekiqSupervisor::ServerMiddleware"), "#{name}: #{chain}"
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
      chain = processor_chain
      chain.invoke(HardWorker.new, job("ok"), "default") { :performed }
      original = ArgumentError.new("bad input")
      raised = begin
        chain.invoke(HardWorker.new, job("boom"), "default") { raise original }
      rescue ArgumentError => e
        e
      end
      shutdown = begin
        chain.invoke(HardWorker.new, job("cut"), "default") { raise Sidekiq::Shutdown }
      rescue Sidekiq::Shutdown
        true
      end
      # A job enqueuing a job: the client chain of the server process.
      pushed = sidekiq_config.client_middleware.invoke("HardWorker", job("child"), "default", nil) { :pushed }

      component = sidekiq_component
      expected = { "identity" => component.identity, "hostname" => component.hostname, "pid" => Process.pid,
                   "thread" => component.tid }
      # Sidekiq fires :shutdown this way when the process stops.
      component.fire_event(:shutdown, reverse: true)
      $stdout.puts JSON.generate(sidekiq_state.merge(
        "expected_worker" => expected, "same_exception" => raised.equal?(original),
        "shutdown_propagated" => shutdown, "pushed" => pushed.to_s
      ))
      $stdout.flush
      exit!(0) # skip at_exit: what the server has, the :shutdown hook sent
    RUBY

    # Sidekiq::Component from 6.5 on, Sidekiq::Util before.
    expected_source = version_at_least?(result, "6.5") ? "Sidekiq::Component" : "Sidekiq::Util"
    assert_equal expected_source, result["identity_source"]
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

  # Sidekiq 7.3+ interrupts an iterable job at shutdown: its InterruptHandler (inside our
  # middleware) pushes the job again and raises Sidekiq::JobRetry::Skip. Requeued, not failed.
  def test_an_interrupted_iterable_job_is_requeued_not_failed
    server = start_server
    result = run_json(<<~RUBY, env: { "SIDEKIQ_SUPERVISOR_HOST" => server.url })
      require "json"
      require "sidekiq/cli"
      require "sidekiq/testing"
      Sidekiq::Testing.fake! # the handler's push stops short of Redis; the client chain runs
      require "sidekiq_supervisor"
      #{PROBE}
      unless defined?(Sidekiq::Job::Interrupted)
        puts JSON.generate(sidekiq_state.merge("iterable" => false))
        exit!(0)
      end

      class SweepJob
        include Sidekiq::IterableJob
        def build_enumerator(cursor:)
          array_enumerator([1, 2, 3], cursor: cursor)
        end

        def each_iteration(*); end
      end

      job = { "class" => "SweepJob", "args" => [], "jid" => "it1", "queue" => "default", "retry" => true }
      raised = begin
        processor_chain.invoke(SweepJob.new, job, "default") { raise Sidekiq::Job::Interrupted }
      rescue Exception => e # rubocop:disable Lint/RescueException
        e
      end
      SidekiqSupervisor.flush(3)
      puts JSON.generate(sidekiq_state.merge("iterable" => true, "raised" => raised.class.name,
                                             "requeued" => SweepJob.jobs.map { |j| j["jid"] }))
    RUBY

    unless result["iterable"]
      refute version_at_least?(result, "7.3"), "Sidekiq #{result["version"]} has iterable jobs"
      return
    end
    assert_equal "Sidekiq::JobRetry::Skip", result["raised"]
    assert_equal ["it1"], result["requeued"]
    assert_equal [%w[started it1], %w[queued it1]], server.delivered_events.map { |e| [e["event"], e["job_id"]] }
  end

  # Sidekiq 7+ can run embedded in a process that lives on after Sidekiq stops (configure_embed);
  # its :shutdown and (8.0.2+) :exit hooks must flush, not stop the reporter.
  def test_reports_still_go_out_after_sidekiqs_stop_events
    server = start_server
    result = run_json(<<~RUBY, env: { "SIDEKIQ_SUPERVISOR_HOST" => server.url })
      require "json"
      require "sidekiq"
      require "sidekiq/testing"
      Sidekiq::Testing.fake! # pushes stop short of Redis; the client chain runs as usual
      require "sidekiq_supervisor"
      #{PROBE}
      embedded = Sidekiq.respond_to?(:configure_embed)
      # Embedded (7+): the configure_server blocks run for the embedded config. 6.x: a server.
      embedded ? Sidekiq.configure_embed { |config| config.queues = %w[default] } : require("sidekiq/cli")

      class MailerWorker
        include Sidekiq::Worker
        def perform(*); end
      end

      MailerWorker.perform_async(1)
      # What Sidekiq's launcher fires as it stops (:exit from 8.0.2 on).
      stopped = sidekiq_state["exit_hooks"] ? %w[quiet shutdown exit] : %w[quiet shutdown]
      stopped.each { |event| sidekiq_component.fire_event(event.to_sym, reverse: true) }
      MailerWorker.perform_async(2)
      flushed = SidekiqSupervisor.flush(3)
      puts JSON.generate(sidekiq_state.merge("embedded" => embedded, "stopped" => stopped, "flushed" => flushed))
    RUBY

    assert_equal version_at_least?(result, "7.0"), result["embedded"]
    assert_equal version_at_least?(result, "8.0.2") ? %w[quiet shutdown exit] : %w[quiet shutdown], result["stopped"]
    assert result["flushed"]
    assert_equal [[1], [2]], server.delivered_events.map { |e| e["arguments"] }
  end

  def test_a_real_sidekiq_client_push_is_reported_queued_at_the_push_in_epoch_seconds
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

      before = Time.now.to_f
      jid = MailerWorker.perform_async(7, "bob@example.com")
      after = Time.now.to_f
      SidekiqSupervisor.flush(3)
      puts JSON.generate("jid" => jid, "jobs" => MailerWorker.jobs.size, "version" => Sidekiq::VERSION,
                         "created_at" => MailerWorker.jobs.first["created_at"], "before" => before, "after" => after)
    RUBY

    assert_equal 1, result["jobs"]
    event = server.delivered_events.fetch(0)
    assert_equal({ "event" => "queued", "job_id" => result["jid"], "job_class" => "MailerWorker",
                   "queue" => "mailers", "arguments" => [7, "bob@example.com"] }, event.reject { |k, _| k == "at" })
    # The report's time is epoch seconds on every line, though Sidekiq 8 writes its job times
    # (created_at, enqueued_at) as integer milliseconds and 6/7 as float seconds.
    assert_kind_of Float, event["at"]
    assert_operator event["at"], :>=, result["before"]
    assert_operator event["at"], :<=, result["after"]
    created = result["created_at"]
    if version_at_least?(result, "8.0")
      assert_kind_of Integer, created
      created /= 1000.0
    else
      assert_kind_of Float, created
    end
    assert_in_delta created, event["at"], 1.0
  end
end

# Sidekiq 6.5+, 7 and 8 differ from 6.4 in what the gem touches: the middleware modules, the
# Sidekiq::Component helpers, a Sidekiq::Config in place of the Sidekiq module, and 8's :exit
# event. This stand-in has exactly that API surface (copied from the 7.x/8.x sources), so that
# those code paths run whichever Sidekiq is installed; SidekiqTest runs the real 7.3.9 and 8.1.7
# when SIDEKIQ_LINE selects them (tests/test_ruby_gem.py runs the suite on each line).
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
