# frozen_string_literal: true

require "test_helper"

class SyncModeTest < SupervisorTest
  def test_each_report_is_sent_before_the_middleware_returns
    server = start_server
    configure_global(server.url, mode: "sync", token: "tok")
    client = SidekiqSupervisor::ClientMiddleware.new
    worker = SidekiqSupervisor::ServerMiddleware.new

    client.call("HardWorker", job, "default", nil) { true }
    assert_equal 1, server.requests.size
    worker.call(Object.new, job, "default") { :ran }

    assert_equal %w[queued started complete], server.requests.flat_map(&:events).map { |e| e["event"] }
    assert_equal [1, 1, 1], server.requests.map { |r| r.events.size }
    assert_equal ["Bearer tok"], server.requests.map { |r| r.headers["authorization"] }.uniq
    assert_equal 1, server.requests.map(&:peer_port).uniq.size, "one keep-alive connection"
    assert_equal 3, SidekiqSupervisor.stats[:delivered]
  end

  def test_the_environment_selects_sync_mode
    ENV["SIDEKIQ_SUPERVISOR_MODE"] = "sync"
    assert SidekiqSupervisor::Config.from_env.sync?
  ensure
    ENV.delete("SIDEKIQ_SUPERVISOR_MODE")
  end

  def test_failures_are_logged_and_counted_never_raised
    server = start_server.answer(500, { hang: 2 })
    configure_global(server.url, mode: :sync, read_timeout: 0.2)
    worker = SidekiqSupervisor::ServerMiddleware.new

    assert_equal :ran, worker.call(Object.new, job, "default") { :ran } # 500, then a hang
    configure_global("http://127.0.0.1:#{closed_port}", mode: :sync)
    assert_equal :ran, worker.call(Object.new, job, "default") { :ran }

    assert_equal 2, SidekiqSupervisor.stats[:failed]
    assert_match(/Connection refused|ECONNREFUSED/, log_text)
  end
end
