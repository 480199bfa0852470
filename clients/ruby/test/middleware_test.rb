# frozen_string_literal: true

require "test_helper"

# The two middlewares, called the way Sidekiq's chains call them, reporting through the
# global configuration to a real HTTP server.
class MiddlewareTest < SupervisorTest
  class JobFailed < StandardError; end
  class SignupMailer; end

  def setup
    super
    @server = start_server
    configure_global(@server.url)
    @client = SidekiqSupervisor::ClientMiddleware.new
    @worker = SidekiqSupervisor::ServerMiddleware.new
  end

  def delivered(count)
    SidekiqSupervisor.flush(3)
    @server.wait_for_events(count)
  end

  def test_the_reports_match_the_wire_contract_exactly
    payload = job(args: [42, "alice@example.com", { "nested" => [1.5, nil] }], retry: false, tags: ["vip"],
                  "created_at" => 1.5, "enqueued_at" => 1.5, "retry_count" => 2, "tenant" => { "id" => 9 })
    before = Time.now.to_f
    @client.call("HardWorker", payload, "default", nil) { true }
    @worker.call(Object.new, payload, "default") { :done }
    assert_raises(JobFailed) { @worker.call(Object.new, payload, "default") { raise JobFailed, "boom" } }

    queued, started, complete, _, failed = delivered(5)

    common = { "job_id" => payload["jid"], "job_class" => "HardWorker", "queue" => "default",
               "arguments" => [42, "alice@example.com", { "nested" => [1.5, nil] }] }
    kept = { "class" => "HardWorker", "retry" => false, "tags" => ["vip"], "tenant" => { "id" => 9 } }
    assert_equal common.merge("event" => "queued", "payload" => kept), queued.reject { |k, _| k == "at" }
    assert_equal %w[event job_id job_class queue arguments at worker payload].sort, started.keys.sort
    assert_equal kept, started["payload"]
    assert_equal common.merge("event" => "complete"), complete.reject { |k, _| k == "at" }
    assert_equal({ "class" => "MiddlewareTest::JobFailed", "message" => "boom" }, failed["error"])
    assert_equal common.merge("event" => "failed"), failed.reject { |k, _| %w[at error].include?(k) }
    worker = started["worker"]
    assert_equal %w[hostname identity pid thread], worker.keys.sort
    assert_equal Process.pid, worker["pid"]
    assert_nil worker["identity"] # no Sidekiq loaded: the supervisor matches hostname:pid instead
    assert_equal ENV["DYNO"] || Socket.gethostname, worker["hostname"]
    assert_equal (Thread.current.object_id ^ Process.pid).to_s(36), worker["thread"]
    [queued, started, complete, failed].each do |event|
      assert_kind_of Float, event["at"]
      assert_in_delta before, event["at"], 5
    end
    assert_operator queued["at"], :<=, started["at"]
    assert_operator started["at"], :<=, complete["at"]
    assert_match(/"at":\d+\.\d+/, @server.requests.first.body, "at is sent as a JSON number with decimals")
  end

  def test_jids_classes_and_queues_that_json_must_escape_arrive_as_they_were
    odd = [["jid\"1\\\n", "Billing::\"Quoted\"Job", "q\u00e9ue\t1"], ["j2", "Billing::\"Quoted\"Job", "other"],
           %W[j3 Plain qéue\t1], ["j4", "Billing::\"Quoted\"Job", "q\u00e9ue\t1"]]
    odd.each do |jid, klass, queue|
      @worker.call(Object.new, job(jid: jid, klass: klass, queue: queue, args: ["\u2603"]), queue) { :done }
    end

    complete = delivered(8).select { |event| event["event"] == "complete" }

    assert_equal odd, complete.map { |event| event.values_at("job_id", "job_class", "queue") }
    assert_equal [["\u2603"]] * 4, complete.map { |event| event["arguments"] }
  end

  def test_a_plain_job_sends_no_payload_since_its_class_and_retry_are_the_defaults
    @client.call("HardWorker", job(queue: "mail", "created_at" => 1.5, "enqueued_at" => 1.5), "mail", nil) { true }
    @worker.call(Object.new, job, "default") { :done }

    queued, started, = delivered(3)

    refute queued.key?("payload")
    refute started.key?("payload")
  end

  def test_activejob_wrapped_jobs_report_the_wrapped_class
    payload = job(klass: "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper", wrapped: "SignupMailerJob",
                  args: [{ "job_class" => "SignupMailerJob", "arguments" => [7] }])
    @client.call("ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper", payload, "mailers", nil) { true }
    # Inside the pushing process, Rails' adapter puts the Class itself in "wrapped".
    payload_with_class = payload.merge("wrapped" => SignupMailer)
    @client.call("ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper", payload_with_class, "mailers", nil) { true }

    events = delivered(2)

    assert_equal %w[SignupMailerJob MiddlewareTest::SignupMailer], events.map { |e| e["job_class"] }
    # Restarts push the wrapper Sidekiq runs; the wrapped class is kept beside it.
    wrapper = "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"
    assert_equal [[wrapper, "SignupMailerJob"], [wrapper, "MiddlewareTest::SignupMailer"]],
                 events.map { |e| e["payload"].values_at("class", "wrapped") }
    assert_equal %w[mailers mailers], events.map { |e| e["queue"] }
  end

  def test_the_client_middleware_always_yields_and_returns_the_blocks_value
    yielded = 0
    results = [{ "jid" => "x" }, nil, false].map do |value|
      @client.call("HardWorker", job, "default", nil) do
        yielded += 1
        value
      end
    end

    assert_equal [{ "jid" => "x" }, nil, false], results
    assert_equal 3, yielded
    assert_equal 1, delivered(1).size, "a push vetoed by a later middleware (nil/false) is not queued"
  end

  def test_an_error_from_the_push_itself_propagates_and_nothing_is_reported
    error = assert_raises(IOError) { @client.call("HardWorker", job, "default", nil) { raise IOError, "redis down" } }

    assert_equal "redis down", error.message
    SidekiqSupervisor.flush(1)
    assert_empty @server.requests
  end

  def test_a_job_that_raises_is_reported_failed_and_the_very_same_exception_propagates
    original = JobFailed.new("x" * 5_000)
    original.set_backtrace(%w[app/jobs/hard_worker.rb:3])

    raised = assert_raises(JobFailed) { @worker.call(Object.new, job, "critical") { raise original } }

    assert_same original, raised
    assert_equal %w[app/jobs/hard_worker.rb:3], raised.backtrace
    assert_nil raised.cause
    started, failed = delivered(2)
    assert_equal %w[started failed], [started["event"], failed["event"]]
    assert_equal "critical", failed["queue"]
    assert_equal "x" * 1_000, failed["error"]["message"]
  end

  def test_exceptions_outside_standard_error_are_failures_too_and_propagate
    assert_raises(NotImplementedError) do
      @worker.call(Object.new, job, "default") { raise NotImplementedError, "todo" }
    end

    assert_equal({ "class" => "NotImplementedError", "message" => "todo" }, delivered(2).last["error"])
  end

  def test_the_server_middleware_returns_the_jobs_value
    assert_equal :result, @worker.call(Object.new, job, "default") { :result }
  end

  def test_the_middlewares_never_raise_their_own_errors_into_jobs
    unencodable = job(args: ["\xFF\xFE".dup.force_encoding(Encoding::BINARY)]) # JSON refuses these bytes

    assert_equal :pushed, @client.call("HardWorker", unencodable, "default", nil) { :pushed }
    assert_equal :ran, @worker.call(Object.new, unencodable, "default") { :ran }
    assert_raises(JobFailed) { @worker.call(Object.new, unencodable, "default") { raise JobFailed } }
    assert_equal :ran, @worker.call(Object.new, nil, "default") { :ran } # not even a job hash
  end

  def test_without_a_host_the_middlewares_only_yield_and_say_so_once
    SidekiqSupervisor.reset!
    SidekiqSupervisor.configure do |config|
      config.host = nil
      config.logger = logger
    end

    assert_equal :pushed, @client.call("HardWorker", job, "default", nil) { :pushed }
    assert_equal :ran, @worker.call(Object.new, job, "default") { :ran }
    refute SidekiqSupervisor.enabled?
    assert_equal 1, log_text.scan(/SIDEKIQ_SUPERVISOR_HOST is not set/).size
    assert_empty @server.requests
  end

  def test_middlewares_never_raise_or_block_when_the_supervisor_is_down_slow_or_failing
    down = "http://127.0.0.1:#{closed_port}"
    @server.answer(*Array.new(50) { { hang: 2 } })
    failing = start_server.answer(Array.new(50) { 500 })

    [down, @server.url, failing.url].each do |host|
      configure_global(host)
      started = monotonic
      20.times do
        assert_equal :pushed, @client.call("HardWorker", job, "default", nil) { :pushed }
        assert_equal :ran, @worker.call(Object.new, job, "default") { :ran }
      end
      assert_operator monotonic - started, :<, 0.5, "20 jobs took too long against #{host}"
    end
  end

  def test_drops_are_exposed_as_a_counter
    configure_global("http://127.0.0.1:#{closed_port}", buffer_size: 3)

    5.times { @client.call("HardWorker", job, "default", nil) { true } }

    assert_equal 2, SidekiqSupervisor.dropped_count
    assert_equal 3, SidekiqSupervisor.stats[:buffered]
  end
end
