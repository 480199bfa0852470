# frozen_string_literal: true

require "test_helper"

class BufferTest < SupervisorTest
  Buffer = SidekiqSupervisor::Buffer

  def test_peek_returns_the_oldest_reports_in_order_and_leaves_them_until_acknowledged
    buffer = Buffer.new(max_size: 10)
    %w[a b c d].each { |item| buffer.push(item) }

    batch = buffer.peek(3)

    assert_equal %w[a b c], batch.items
    assert_equal 4, buffer.size
    buffer.ack(batch)
    assert_equal %w[d], buffer.peek(3).items
  end

  def test_past_its_bound_it_drops_the_oldest_and_counts_the_drops
    buffer = Buffer.new(max_size: 3)

    lost = (1..5).map { |i| buffer.push("r#{i}") }

    assert_equal [0, 0, 0, 1, 1], lost
    assert_equal %w[r3 r4 r5], buffer.peek(10).items
    assert_equal 2, buffer.dropped
  end

  def test_the_byte_bound_drops_the_oldest_too_but_keeps_the_newest_report
    buffer = Buffer.new(max_size: 100, max_bytes: 10)
    buffer.push("aaaa")
    buffer.push("bbbb")
    buffer.push("cccc")

    assert_equal %w[bbbb cccc], buffer.peek(10).items
    assert_equal 8, buffer.bytes
    buffer.push("x" * 50)
    assert_equal ["x" * 50], buffer.peek(10).items
  end

  def test_ack_after_drops_removes_only_what_is_left_of_the_batch
    buffer = Buffer.new(max_size: 4)
    %w[a b c d].each { |item| buffer.push(item) }
    batch = buffer.peek(3) # a b c, being sent

    %w[e f].each { |item| buffer.push(item) } # drops a and b meanwhile
    buffer.ack(batch)

    assert_equal %w[d e f], buffer.peek(10).items
    assert_equal 2, buffer.dropped
  end

  def test_peek_keeps_a_request_under_the_byte_limit_but_always_takes_one
    buffer = Buffer.new(max_size: 10)
    %w[aaaa bbbb cccc].each { |item| buffer.push(item) }

    assert_equal %w[aaaa bbbb], buffer.peek(10, 10).items
    assert_equal %w[aaaa], buffer.peek(10, 2).items
  end

  def test_a_batch_body_is_the_events_envelope_around_the_encoded_reports
    batch = Buffer::Batch.of(0, ['{"event":"queued"}', '{"event":"started"}'])

    assert_equal({ "events" => [{ "event" => "queued" }, { "event" => "started" }] }, JSON.parse(batch.body))
  end
end
