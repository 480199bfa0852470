# frozen_string_literal: true

require "test_helper"

# The async reporter against a real HTTP server on 127.0.0.1: batching, order, keep-alive,
# retries, backoff, the bounded buffer, and the answers of the wire contract.
class ReporterTest < SupervisorTest
  def test_many_reports_go_in_few_requests_none_above_batch_size_in_order_on_one_connection
    server = start_server
    reporter = build_reporter(server.url, batch_size: 500, flush_interval: 0.2)

    1_200.times { |i| reporter.record(report(i)) }

    assert reporter.flush(5)
    requests = server.requests
    assert_operator requests.size, :<=, 4
    assert requests.all? { |r| r.events.size <= 500 }, requests.map { |r| r.events.size }.inspect
    assert_equal (0...1_200).map { |i| [i] }, server.delivered_events.map { |e| e["arguments"] }
    assert_equal 1, requests.map(&:peer_port).uniq.size, "expected one keep-alive connection"
    assert_equal({ delivered: 1_200, rejected: 0, dropped: 0, failed: 0, failed_requests: 0, buffered: 0 },
                 reporter.stats)
  end

  def test_a_lone_report_waits_only_flush_interval
    server = start_server
    reporter = build_reporter(server.url, flush_interval: 0.05)

    started = monotonic
    reporter.record(report(1))
    server.wait_for_events(1)

    assert_equal 1, server.delivered_events.size
    assert_operator monotonic - started, :<, 1.0
  end

  def test_after_a_full_batch_the_rest_waits_flush_interval_to_fill_the_next_one
    server = start_server
    reporter = build_reporter(server.url, batch_size: 5, flush_interval: 0.6)

    7.times { |i| reporter.record(report(i)) }
    server.wait_for_requests(1)
    sleep 0.2

    assert_equal [5], server.requests.map { |r| r.events.size }, "the 2 left over must wait for more"
    server.wait_for_events(7)
    assert_equal [5, 2], server.requests.map { |r| r.events.size }
  end

  def test_requests_are_json_posts_to_the_batch_route_with_a_bearer_token
    server = start_server
    reporter = build_reporter(server.url, token: "s3cret")

    reporter.record(report(1))
    reporter.flush(3)

    request = server.requests.first
    assert_equal "/api/v1/events", request.path
    assert_equal "application/json", request.headers["content-type"]
    assert_equal "Bearer s3cret", request.headers["authorization"]
    assert_match %r{\Asidekiq-supervisor-ruby/}, request.headers["user-agent"]
    assert_equal "return=minimal", request.headers["prefer"]
  end

  def test_the_token_may_come_from_the_url_credentials_and_without_one_there_is_no_header
    server = start_server
    with_url = build_reporter(server.url(userinfo: "deploy:t%40ken"))
    without = build_reporter(server.url)

    with_url.record(report(1))
    with_url.flush(3)
    without.record(report(2))
    without.flush(3)

    first, second = server.requests
    assert_equal "Bearer t@ken", first.headers["authorization"]
    assert_nil second.headers["authorization"]
  end

  def test_it_retries_with_growing_delays_while_the_supervisor_answers_500_then_delivers_once_in_order
    server = start_server.answer(500, 500, 500)
    reporter = build_reporter(server.url, retry_base: 0.05, retry_max: 1)

    3.times { |i| reporter.record(report(i)) }

    events = server.wait_for_events(3)
    assert_equal [[0], [1], [2]], events.map { |e| e["arguments"] }
    times = server.requests.map(&:received_at)
    gaps = times.each_cons(2).map { |a, b| b - a }
    assert_equal 4, times.size
    # 0.05, 0.1, 0.2 less up to 20% jitter
    assert gaps[0] >= 0.035 && gaps[1] >= 0.075 && gaps[2] >= 0.155, gaps.inspect
    assert_operator gaps[2], :>, gaps[0]
    assert_match(/answered 500/, log_text)
    assert_equal 3, reporter.stats[:failed_requests]
  end

  def test_a_503_with_retry_after_is_respected
    server = start_server.answer({ status: 503, headers: { "Retry-After" => "1" } })
    reporter = build_reporter(server.url, retry_base: 0.01)

    reporter.record(report(1))
    server.wait_for_events(1, timeout: 4)

    first, second = server.requests
    assert_equal 1, server.delivered_events.size
    assert_operator second.received_at - first.received_at, :>=, 0.95
  end

  def test_while_the_supervisor_is_down_reports_wait_and_go_in_order_when_it_comes_back
    port = closed_port
    reporter = build_reporter("http://127.0.0.1:#{port}", retry_base: 0.02, retry_max: 0.1)

    5.times { |i| reporter.record(report(i)) }
    assert wait_until { reporter.stats[:failed_requests] >= 2 }
    server = start_server(port: port)
    5.upto(7) { |i| reporter.record(report(i)) }

    events = server.wait_for_events(8)
    assert_equal (0..7).map { |i| [i] }, events.map { |e| e["arguments"] }
    assert_match(/cannot reach the supervisor/, log_text)
    assert wait_until { log_text.match?(/answers again after \d+ failed attempts/) }, log_text
  end

  def test_past_the_bound_the_oldest_reports_are_dropped_counted_and_logged_once_a_minute
    port = closed_port
    reporter = build_reporter("http://127.0.0.1:#{port}", buffer_size: 5, retry_base: 0.05, retry_max: 0.05)

    12.times { |i| reporter.record(report(i)) }
    assert_equal 7, reporter.dropped_count
    server = start_server(port: port)

    events = server.wait_for_events(5)
    assert_equal (7..11).map { |i| [i] }, events.map { |e| e["arguments"] }
    assert_equal 1, log_text.scan(/dropped the oldest reports/).size, log_text
    assert_match(/dropped the oldest reports, 1 so far/, log_text)
  end

  # A full buffer pushes out its oldest reports, those of the batch being sent included. When the
  # supervisor stores that batch, they were delivered, not dropped: only the others count.
  def test_reports_pushed_out_while_their_batch_is_being_sent_count_as_dropped_only_if_it_fails
    [[200, [0, 1, 2, 3, 4, 7, 8, 9, 10, 11], 2], [500, [7, 8, 9, 10, 11], 7]].each do |status, delivered, dropped|
      @log.truncate(0)
      gate = Queue.new
      server = start_server.answer(->(_request) { gate.pop })
      # The batch goes when it is full, never on a timer; the held request does not time out.
      reporter = build_reporter(server.url, buffer_size: 5, batch_size: 5, flush_interval: 30, read_timeout: 30)

      5.times { |i| reporter.record(report(i)) }
      assert_equal 1, server.wait_for_requests(1).size
      5.upto(11) { |i| reporter.record(report(i)) } # pushes out 0-4 (being sent), then 5 and 6
      gate << { status: status }

      assert reporter.flush(5)
      assert_equal delivered.map { |i| [i] }, server.delivered_events.map { |e| e["arguments"] }
      counts = reporter.stats
      assert_equal [delivered.size, dropped, 0], [counts[:delivered], counts[:dropped], counts[:buffered]], status
      assert reporter.shutdown(3)
      assert_match(/#{dropped} reports dropped in all because the buffer was full .*, #{delivered.size} delivered/,
                   log_text)
    end
  end

  def test_a_413_halves_the_batch_until_the_supervisor_takes_it
    server = start_server
    server.max_events = 40
    reporter = build_reporter(server.url, batch_size: 500, flush_interval: 0.2)

    100.times { |i| reporter.record(report(i)) }

    assert reporter.flush(5)
    assert_equal (0...100).map { |i| [i] }, server.delivered_events.map { |e| e["arguments"] }
    assert server.requests.any? { |r| r.status == 413 }
    assert server.requests.select { |r| r.status == 200 }.all? { |r| r.events.size <= 40 }
  end

  def test_a_single_report_refused_as_too_large_is_dropped_and_the_rest_go_on
    server = start_server.answer(413)
    reporter = build_reporter(server.url)

    reporter.record(report(1))
    reporter.flush(3)
    reporter.record(report(2))
    reporter.flush(3)

    assert_equal [[2]], server.delivered_events.map { |e| e["arguments"] }
    assert_equal 1, reporter.stats[:rejected]
    assert_match(/too large \(413\)/, log_text)
  end

  def test_items_rejected_with_422_are_logged_and_not_retried
    server = start_server.answer(lambda do |request|
      results = request.events.map.with_index do |event, index|
        if index.zero?
          { status: 422, detail: [{ loc: ["body", "events", 0, "event"], msg: "Input should be 'queued'" }] }
        else
          { status: 201, jid: event["job_id"], job_status: event["event"] }
        end
      end
      { status: 200, body: { stored: results.size - 1, rejected: 1, results: results } }
    end)
    reporter = build_reporter(server.url, flush_interval: 0.1)

    reporter.record(report(1, event: "failed"))
    reporter.record(report(2))
    reporter.flush(3)
    sleep 0.1

    assert_equal 1, server.requests.size
    assert_equal 1, reporter.stats[:rejected]
    assert_equal 1, reporter.stats[:delivered]
    assert_match(/rejected 1 of 2 reports \(not retried\): failed HardWorker 0+1: event: Input/, log_text)
  end

  def test_a_batch_refused_with_400_is_dropped_not_retried_forever
    server = start_server.answer(400)
    reporter = build_reporter(server.url)

    reporter.record(report(1))

    assert reporter.flush(3)
    assert_equal 1, server.requests.size
    assert_equal 1, reporter.stats[:rejected]
    assert_match(/refused a batch of 1 reports \(400/, log_text)
  end

  def test_a_bad_token_is_logged_loudly_and_reports_wait_for_a_good_one
    server = start_server.answer(401, 401)
    reporter = build_reporter(server.url, token: "wrong", retry_base: 0.02)

    reporter.record(report(1))

    assert_equal 1, server.wait_for_events(1).size
    assert_match(/ERROR .*refused the token \(401\): check SIDEKIQ_SUPERVISOR_TOKEN/, log_text)
    assert_equal 1, log_text.scan(/refused the token/).size
  end

  def test_a_hung_supervisor_never_slows_record_and_the_report_is_resent_after_the_timeout
    server = start_server.answer({ hang: 3 })
    reporter = build_reporter(server.url, read_timeout: 0.3)

    started = monotonic
    reporter.record(report(1))
    sleep 0.05 # the sender is now waiting for the hung request
    reporter.record(report(2))
    elapsed = monotonic - started

    assert_operator elapsed, :<, 0.2
    events = server.wait_for_events(2, timeout: 3)
    assert_equal [[1], [2]], events.map { |e| e["arguments"] }
    assert_equal :hung, server.requests.first.status
    assert_match(/ReadTimeout/, log_text)
  end

  def test_flush_and_shutdown_are_bounded_when_the_supervisor_is_down
    reporter = build_reporter("http://127.0.0.1:#{closed_port}")
    3.times { |i| reporter.record(report(i)) }

    started = monotonic
    refute reporter.flush(0.3)
    refute reporter.shutdown(0.3)

    assert_operator monotonic - started, :<, 1.5
    assert_match(/3 reports not delivered at shutdown/, log_text)
  end

  def test_shutdown_delivers_what_is_buffered_and_later_reports_are_counted_as_dropped
    server = start_server
    reporter = build_reporter(server.url, flush_interval: 30)
    4.times { |i| reporter.record(report(i)) }

    assert reporter.shutdown(3)
    reporter.record(report(9))

    assert_equal 4, server.delivered_events.size
    assert_equal 1, reporter.stats[:dropped]
  end
end
