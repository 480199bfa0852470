# frozen_string_literal: true

require "test_helper"

# How the gem reads the batch route's answers (the wire contract).
class TransportTest < SupervisorTest
  Response = SidekiqSupervisor::Transport::Response

  def test_each_status_gets_the_contracts_verdict
    verdicts = [200, 201, 413, 400, 415, 422, 401, 403, 404, 429, 500, 502, 503].to_h do |status|
      [status, Response.new(status, "", nil).verdict]
    end

    assert_equal({ 200 => :stored, 201 => :stored, 413 => :too_large, 400 => :refused, 415 => :refused,
                   422 => :refused, 401 => :unauthorized, 403 => :unauthorized, 404 => :unavailable,
                   429 => :unavailable, 500 => :unavailable, 502 => :unavailable, 503 => :unavailable }, verdicts)
  end

  def test_refused_items_are_the_results_with_a_4xx_status_by_position
    body = JSON.generate(stored: 2, rejected: 1, results: [
                           { status: 201, jid: "a", job_status: "queued" },
                           { status: 422, detail: [{ loc: ["body", "events", 1, "arguments"], msg: "too long" }] },
                           { status: 200, jid: "c", job_status: "started" }
                         ])

    refused = Response.new(200, body, nil).refused_items

    assert_equal [1], refused.map(&:first)
    assert_equal 422, refused.first.last["status"]
    assert_empty Response.new(200, "not json", nil).refused_items
    assert_empty Response.new(200, '{"results": "odd"}', nil).refused_items
    assert_empty Response.new(200, "[]", nil).refused_items
  end

  def test_a_minimal_answer_lists_the_refused_items_by_index
    body = JSON.generate(stored: 2, rejected: 1, refused: [{ index: 1, status: 422, detail: [{ msg: "too long" }] }])

    refused = Response.new(200, body, nil).refused_items

    assert_equal [1], refused.map(&:first)
    assert_equal 422, refused.first.last["status"]
    assert_empty Response.new(200, '{"stored": 3, "rejected": 0, "refused": []}', nil).refused_items
    assert_empty Response.new(200, '{"refused": [{"index": "1"}]}', nil).refused_items
  end

  def test_retry_after_reads_seconds_and_http_dates
    retry_after = SidekiqSupervisor::Transport.method(:retry_after)

    assert_equal 3.0, retry_after.call("3")
    assert_equal 1.5, retry_after.call(" 1.5 ")
    assert_in_delta 10, retry_after.call((Time.now + 10).httpdate), 1.5
    assert_equal 0.0, retry_after.call((Time.now - 60).httpdate)
    assert_nil retry_after.call(nil)
    assert_nil retry_after.call("soon")
  end
end
