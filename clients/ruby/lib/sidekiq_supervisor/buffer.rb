# frozen_string_literal: true

require "stringio"

module SidekiqSupervisor
  # The reports not yet acknowledged by the supervisor, oldest first, each already encoded as
  # JSON text. Bounded in count and in bytes: past either bound the OLDEST reports are dropped,
  # because the newest say the most about what is running now, and counted.
  #
  # A report stays in the buffer while it is being sent and leaves it only when the sender
  # acknowledges its batch, so the bound covers everything in memory and a failed send keeps
  # its place at the head (order is preserved). Sequence numbers tie a batch to the reports it
  # holds even when some of them were dropped meanwhile.
  #
  # A report pushed out while its batch is being sent is not counted as dropped at once: if the
  # supervisor stores the batch, the report was delivered. It counts as dropped only when that
  # send fails (#release), since the reports that go again no longer include it. (#take marks
  # the batch being sent; #peek only looks.)
  #
  # The reports live in chunks: binary Strings of a fixed size (CHUNK_BYTES), written front to
  # back, each report followed by a comma, with their end offsets (Integers, which are not objects
  # to Ruby's GC) beside them. A chunk whose reports have all left is emptied and reused, so a
  # full buffer takes each new report, and drops the oldest, in the memory it already has (why
  # not an Array of Strings, or one compacted String: CHANGELOG.md, "Buffer design").
  #
  # Not thread-safe: the Reporter guards it with its mutex.
  class Buffer
    # The reports from sequence number +first_seq+ on, as taken by #peek: +joined+ holds them,
    # each followed by a comma. Where each one ends is worked out only when one is asked for
    # (#item, for the odd refusal): a batch is taken without a step per report.
    class Batch
      attr_reader :first_seq, :size

      # A batch of the given encoded reports (sync mode sends one at a time).
      def self.of(first_seq, reports)
        ends = []
        reports.each { |report| ends << (ends.last.to_i + report.bytesize + 1) }
        new(first_seq, reports.map { |report| "#{report}," }.join, [[ends, 0]])
      end

      # +runs+: one [ends, shift] per stretch of +joined+ copied from one place, where +ends+
      # are where the stretch's separators end in that place (a slice of the buffer's own
      # offsets) and +shift+ turns them into offsets in +joined+.
      def initialize(first_seq, joined, runs)
        @first_seq = first_seq
        @joined = joined
        @runs = runs
        @size = runs.sum { |ends, _shift| ends.size }
      end

      def body
        "{\"events\":[#{@joined.byteslice(0, [@joined.bytesize - 1, 0].max)}]}"
      end

      # The encoded report at +index+ (for the odd refusal: the hot path never splits a batch).
      def item(index)
        from = index.zero? ? 0 : ends[index - 1]
        @joined.byteslice(from, ends[index] - from - 1)
      end

      def items
        Array.new(size) { |index| item(index) }
      end

      private

      # Where each report's separator ends in +joined+.
      def ends
        @ends ||= @runs.flat_map { |ends, shift| shift.zero? ? ends : ends.map { |at| at + shift } }
      end
    end

    # A block of memory that reports are written into, front to back, and that is reused once
    # every report in it has left. Binary, so that StringIO writes a report as a plain copy of
    # its bytes, in place: the String is allocated once, at its full size, and never resized.
    class Chunk
      attr_reader :used

      def initialize(capacity)
        @data = "\0".b * capacity
        @io = StringIO.new(@data)
        @used = 0
      end

      def capacity
        @data.bytesize
      end

      # Whether +bytes+ more fit. The last byte is never written: a slice that reaches the end of
      # a String shares its memory, and the chunk's next write would then copy it whole.
      def room?(bytes)
        @used + bytes < @data.bytesize
      end

      # Writes +report+ and its separator; returns where the separator ends.
      def write(report)
        @io.write(report, SEPARATOR)
        @used = @io.pos
      end

      # Writes the five pieces of one report, then its separator (no splat: it would allocate).
      def write_parts(head, fields, at_key, at, tail)
        @io.write(head, fields, at_key, at, tail, SEPARATOR)
        @used = @io.pos
      end

      # A copy of the bytes from +from+ to +to+, as UTF-8 text (reports are JSON).
      def slice(from, to)
        @data.byteslice(from, to - from).force_encoding(Encoding::UTF_8)
      end

      def clear
        @io.rewind
        @used = 0
      end
    end

    SEPARATOR = ","
    # The capacity of a chunk; a larger report gets a chunk of its own, not reused.
    CHUNK_BYTES = 64 * 1024
    # Emptied chunks kept for reuse (1 MiB); those past it are left to the GC.
    SPARE_CHUNKS = 16

    attr_reader :dropped, :head_seq

    def initialize(max_size:, max_bytes: nil)
      @max_size = [max_size.to_i, 1].max
      @max_bytes = max_bytes
      @chunks = []    # Chunks, oldest first
      @counts = []    # how many of the held reports each chunk has
      @spare = []     # emptied Chunks of CHUNK_BYTES, ready for reuse
      @start = 0      # where the oldest report begins in the first chunk
      @ends = []      # where each report's separator ends in its chunk, oldest first
      @written = 0    # bytes written to the chunks held, consumed ones included
      @head_seq = 0   # sequence number of the oldest report
      @dropped = 0
      @sending_end = 0 # sequence number past the last report of the batch being sent
      @evicted = 0     # reports of that batch pushed out of the buffer meanwhile
    end

    # Adds a report; returns how many old reports it dropped (pushed out and lost: see #take).
    # On every job thread's path:
    # the usual case (room in the last chunk, nothing to drop) makes no call but the copy.
    def push(report)
      needed = report.bytesize + 1 # and the separator
      chunk = @chunks.last
      chunk = chunk_for(needed) unless chunk&.room?(needed)
      @ends << chunk.write(report)
      pushed(needed)
    end

    # Adds the report that is the concatenation of the five Strings +head+, +fields+, +at_key+,
    # +at+ and +tail+, written into the chunk piece by piece: the job threads' reports, which
    # thus never exist as a String of their own (one malloc'd String less per report, that the
    # GC would have to free). Returns what #push returns.
    def push_parts(head, fields, at_key, at, tail)
      needed = head.bytesize + fields.bytesize + at_key.bytesize + at.bytesize + tail.bytesize + 1
      chunk = @chunks.last
      chunk = chunk_for(needed) unless chunk&.room?(needed)
      @ends << chunk.write_parts(head, fields, at_key, at, tail)
      pushed(needed)
    end

    def size
      @ends.size
    end

    def empty?
      @ends.empty?
    end

    # The bytes of the reports held (without their separators).
    def bytes
      @written - @start - @ends.size
    end

    # Sequence number the next pushed report will get.
    def next_seq
      @head_seq + @ends.size
    end

    # The oldest reports, at most +max_count+ of them and +max_bytes+ of body (but always one,
    # so that a single large report is sent and the supervisor decides), left in place.
    def peek(max_count, max_bytes = nil)
      count = [max_count, @ends.size].min
      total = span(count)
      if max_bytes && count > 1 && total > max_bytes
        count = fitting(count, max_bytes)
        total = span(count)
      end
      return Batch.new(@head_seq, "", []) if count.zero?

      joined = String.new(capacity: total, encoding: Encoding::UTF_8)
      runs = []
      each_run(count) do |chunk, from, first, last|
        runs << [@ends[first..last], joined.bytesize - from]
        joined << chunk.slice(from, @ends[last])
      end
      Batch.new(@head_seq, joined, runs)
    end

    # #peek for the sender: the batch it sends now. Until #ack or #release, a report of it pushed
    # out of the buffer is not counted as dropped yet.
    def take(max_count, max_bytes = nil)
      settle_evicted
      batch = peek(max_count, max_bytes)
      @sending_end = batch.first_seq + batch.size
      batch
    end

    # Forgets the reports of +batch+ that are still here: the supervisor has them (or refused
    # them), including those pushed out of the buffer while the batch was being sent.
    def ack(batch)
      count = (batch.first_seq + batch.size - @head_seq).clamp(0, @ends.size)
      forget(count)
      @evicted = 0
      @sending_end = 0
      count
    end

    # The send of +batch+ failed: its reports stay to go again, except those pushed out of the
    # buffer meanwhile, which are now counted as dropped. Returns how many those were.
    def release
      lost = settle_evicted
      @sending_end = 0
      lost
    end

    private

    # Counts a report just written (+needed+ bytes with its separator) and enforces the bounds.
    def pushed(needed)
      @written += needed
      @counts[-1] += 1
      held = @ends.size
      return 0 if held <= @max_size && (@max_bytes.nil? || @written - @start - held <= @max_bytes || held == 1)

      drop_past_bounds
    end

    # Drops the oldest reports until the buffer is within its bounds; returns how many were
    # lost (not counting those of the batch being sent: see #release).
    def drop_past_bounds
      lost = 0
      while @ends.size > @max_size || (@max_bytes && bytes > @max_bytes && @ends.size > 1)
        if @head_seq < @sending_end
          @evicted += 1
        else
          @dropped += 1
          lost += 1
        end
        forget(1)
      end
      lost
    end

    # Counts as dropped the reports of the last batch taken that were pushed out while it was
    # out (its send failed, or it was never acknowledged); returns how many.
    def settle_evicted
      lost = @evicted
      @dropped += lost
      @evicted = 0
      lost
    end

    # A new chunk for the next report (the last one has no room): a spare or a new one.
    def chunk_for(needed)
      chunk = needed < CHUNK_BYTES ? (@spare.pop || Chunk.new(CHUNK_BYTES)) : Chunk.new(needed + 1)
      @chunks << chunk
      @counts << 0
      chunk
    end

    def forget(count)
      while count.positive?
        held = @counts.first
        if count < held
          @start = @ends[count - 1]
          # shift(n) returns a new Array: one object per dropped report, on the job threads' path.
          count == 1 ? @ends.shift : @ends.shift(count)
          @counts[0] -= count
          @head_seq += count
          return
        end
        drop_first_chunk(held)
        count -= held
      end
    end

    def drop_first_chunk(held)
      chunk = @chunks.shift
      @written -= chunk.used
      @counts.shift
      @ends.shift(held)
      @head_seq += held
      @start = 0
      return unless chunk.capacity == CHUNK_BYTES && @spare.size < SPARE_CHUNKS

      chunk.clear
      @spare << chunk
    end

    # The largest count up to +count+ whose reports (with separators) fit in +limit+ bytes; at
    # least one. Steps through the reports one by one: #peek asks only when they do not all fit.
    def fitting(count, limit)
      total = 0
      taken = 0
      each_run(count) do |_chunk, from, first, last|
        (first..last).each do |index|
          size = @ends[index] - (index == first ? from : @ends[index - 1])
          return [taken, 1].max if total + size > limit

          total += size
          taken += 1
        end
      end
      taken
    end

    # The bytes (with separators) of the oldest +count+ reports.
    def span(count)
      total = 0
      each_run(count) { |_chunk, from, _first, last| total += @ends[last] - from }
      total
    end

    # Yields, chunk by chunk, the part of the oldest +count+ reports each chunk holds: the chunk,
    # where the part begins in it, and the indexes (in @ends) of its first and last reports.
    def each_run(count)
      first = 0
      @chunks.each_with_index do |chunk, position|
        break if first >= count

        last = [first + @counts[position], count].min - 1
        yield chunk, position.zero? ? @start : 0, first, last
        first = last + 1
      end
    end
  end
end
