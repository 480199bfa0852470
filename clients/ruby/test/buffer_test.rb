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

  def test_a_report_pushed_in_pieces_is_held_as_their_concatenation_and_counts_against_the_bounds
    first = "{\"x\":1,\"at\":2.5}"
    second = "{\"y\":2,\"at\":3.5}"
    buffer = Buffer.new(max_size: 100, max_bytes: first.bytesize + second.bytesize)
    buffer.push("a")

    assert_equal 0, buffer.push_parts("{", "\"x\":1", ",\"at\":", "2.5", "}")
    assert_equal ["a", first], buffer.peek(10).items
    assert_equal 1 + first.bytesize, buffer.bytes
    assert_equal 1, buffer.push_parts("{", "\"y\":2", ",\"at\":", "3.5", "}") # one byte too many: "a" goes
    assert_equal [first, second], buffer.peek(10).items
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

  def test_reports_of_the_batch_taken_are_dropped_only_when_its_send_fails
    [[:ack, 0, %w[d e f], 1], [:release, 2, %w[c d e f], 2]].each do |outcome, dropped, left, more|
      buffer = Buffer.new(max_size: 4)
      %w[a b c d].each { |item| buffer.push(item) }
      batch = buffer.take(3) # a b c, being sent

      assert_equal [0, 0], %w[e f].map { |item| buffer.push(item) } # push out a and b meanwhile
      assert_equal 0, buffer.dropped
      outcome == :ack ? buffer.ack(batch) : assert_equal(2, buffer.release)

      assert_equal dropped, buffer.dropped, outcome
      assert_equal left, buffer.peek(10).items
      # Nothing is being sent now: a push past the bound drops at once.
      assert_equal more, %w[g h].sum { |item| buffer.push(item) }
      assert_equal dropped + more, buffer.dropped
    end
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

  # Reports of every size around a chunk's, text beyond ASCII included, come back byte for byte.
  def test_reports_spread_over_many_chunks_come_back_whole_and_in_order
    sizes = [1, 100, Buffer::CHUNK_BYTES / 3, Buffer::CHUNK_BYTES - 2, Buffer::CHUNK_BYTES, 5, 2 * Buffer::CHUNK_BYTES]
    reports = sizes.each_with_index.map { |size, i| JSON.generate({ "n" => i, "text" => "é日x" * (size / 6) }) }
    buffer = Buffer.new(max_size: 100)
    reports.each { |report| buffer.push(report) }

    batch = buffer.peek(100)

    assert_equal reports, batch.items
    assert(batch.items.all? { |item| item.encoding == Encoding::UTF_8 && item.valid_encoding? })
    assert_equal(reports.map { |report| JSON.parse(report) }, JSON.parse(batch.body)["events"])
    assert_equal reports.sum(&:bytesize), buffer.bytes
    buffer.ack(buffer.peek(3))
    assert_equal reports.drop(3), buffer.peek(100).items
    assert_equal reports.drop(3).sum(&:bytesize), buffer.bytes
  end

  def test_peek_keeps_a_request_under_the_byte_limit_across_chunks
    report = "r" * 1_000
    buffer = Buffer.new(max_size: 1_000)
    200.times { buffer.push(report) }

    batch = buffer.peek(500, 150_000)

    assert_equal 149, batch.size # 149 reports and their commas: 149,149 bytes; one more is 150,150
    assert_equal [report] * 149, batch.items
  end

  def test_the_byte_bound_holds_across_chunks
    report = "b" * 1_000
    buffer = Buffer.new(max_size: 10_000, max_bytes: 3 * Buffer::CHUNK_BYTES)
    1_000.times { buffer.push(report) }

    assert_equal 3 * Buffer::CHUNK_BYTES / 1_000, buffer.size
    assert_operator buffer.bytes, :<=, 3 * Buffer::CHUNK_BYTES
    assert_equal 1_000 - buffer.size, buffer.dropped
  end

  # A batch goes out after the buffer's lock is released, while job threads push on: it must not
  # see the memory its reports were taken from, which the buffer reuses once they leave.
  def test_a_batch_keeps_its_reports_when_the_buffer_reuses_their_memory
    buffer = Buffer.new(max_size: 50)
    old = Array.new(50) { |i| JSON.generate({ "old" => i, "pad" => "o" * 2_000 }) }
    old.each { |report| buffer.push(report) }
    batch = buffer.peek(50)

    5_000.times { |i| buffer.push(JSON.generate({ "new" => i, "pad" => "n" * 2_000 })) }

    assert_equal old, batch.items
    assert_equal(old.map { |report| JSON.parse(report) }, JSON.parse(batch.body)["events"])
    assert_equal 0, buffer.ack(batch), "its reports were all dropped meanwhile"
  end

  # While the supervisor is away, a full buffer takes a report and drops the oldest for each one
  # pushed. It must do so in the memory it has: a buffer that allocated anew as it went (even
  # freeing as much) left a Sidekiq process far larger than its bound, as freed blocks fragmented
  # the malloc arenas of the job threads and outlived their reports in Ruby's old generation.
  def test_past_its_bound_the_buffer_reuses_its_memory
    reports = Array.new(200) { |i| JSON.generate({ "n" => i, "text" => "é" * 500 }) }
    buffer = Buffer.new(max_size: 300)
    2_000.times { |i| buffer.push(reports[i % 200]) }
    GC.start
    GC.disable
    before = GC.stat(:malloc_increase_bytes)

    10_000.times { |i| buffer.push(reports[i % 200]) } # 10 MB of reports

    allocated = GC.stat(:malloc_increase_bytes) - before
    assert_operator allocated, :<, Buffer::CHUNK_BYTES, "bytes allocated while pushing 10 MB through a full buffer"
    assert_equal 300, buffer.size
    kept = buffer.peek(300).items.map { |item| JSON.parse(item)["n"] }
    assert_equal (100...200).to_a + (0...200).to_a, kept, "the last 300 pushed"
  ensure
    GC.enable
  end
end
