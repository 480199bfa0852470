# frozen_string_literal: true

require "test_helper"

# Child Ruby processes that record reports and exit: at_exit must deliver what is buffered,
# within a bounded wait.
class ExitFlushTest < SupervisorTest
  RECORD_AND_EXIT = <<~RUBY
    require "sidekiq_supervisor"
    SidekiqSupervisor.configure do |c|
      c.flush_interval = 30 # nothing leaves before exit unless at_exit sends it
      c.shutdown_timeout = Float(ENV.fetch("SHUTDOWN_TIMEOUT", "5"))
      c.read_timeout = 10
    end
    client = SidekiqSupervisor::ClientMiddleware.new
    25.times do |i|
      job = { "class" => "HardWorker", "jid" => format("%024x", i), "args" => [i], "queue" => "default" }
      client.call("HardWorker", job, "default", nil) { true }
    end
    puts SidekiqSupervisor.stats[:buffered]
  RUBY

  def test_reports_buffered_at_exit_are_delivered
    server = start_server

    stdout, stderr, status = run_ruby(RECORD_AND_EXIT, env: { "SIDEKIQ_SUPERVISOR_HOST" => server.url })

    assert status.success?, stderr
    assert_equal "25", stdout.strip, "the reports were still buffered when the script ended"
    assert_equal (0...25).map { |i| [i] }, server.delivered_events.map { |e| e["arguments"] }
  end

  def test_exit_waits_a_bounded_time_when_the_supervisor_is_down
    started = monotonic
    _, stderr, status = run_ruby(RECORD_AND_EXIT, env: { "SIDEKIQ_SUPERVISOR_HOST" => "http://127.0.0.1:#{closed_port}",
                                                         "SHUTDOWN_TIMEOUT" => "0.5" })

    assert status.success?, stderr
    assert_operator monotonic - started, :<, 3
    assert_match(/25 reports not delivered at shutdown/, stderr)
  end

  def test_exit_waits_a_bounded_time_when_the_supervisor_hangs
    server = start_server.answer({ hang: 10 })
    started = monotonic

    _, stderr, status = run_ruby(RECORD_AND_EXIT, env: { "SIDEKIQ_SUPERVISOR_HOST" => server.url,
                                                         "SHUTDOWN_TIMEOUT" => "0.5" })

    assert status.success?, stderr
    assert_operator monotonic - started, :<, 3
  end

  def test_a_forked_child_reports_its_own_jobs_and_never_resends_its_parents
    skip "no fork on this platform" unless Process.respond_to?(:fork)
    server = start_server
    script = <<~RUBY
      require "sidekiq_supervisor"
      SidekiqSupervisor.configure { |c| c.flush_interval = 30 }
      client = SidekiqSupervisor::ClientMiddleware.new
      push = lambda do |jid|
        client.call("W", { "class" => "W", "jid" => jid, "args" => [jid], "queue" => "q" }, "q", nil) { true }
      end
      push.call("parent1")
      push.call("parent2")
      pid = fork do
        push.call("child1")
      end
      Process.wait(pid)
      exit($?.success? ? 0 : 1)
    RUBY

    _, stderr, status = run_ruby(script, env: { "SIDEKIQ_SUPERVISOR_HOST" => server.url })

    assert status.success?, stderr
    assert_equal %w[child1 parent1 parent2], server.delivered_events.map { |e| e["job_id"] }.sort
  end
end
