# frozen_string_literal: true

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
  # The reports live in one String, each followed by a comma, with their end offsets (Integers,
  # which are not objects to Ruby's GC) beside it. Kept as an Array of Strings, reports lived
  # long enough to reach the old generation of the app's heap, and each one freed took a major
  # GC: a cost every Sidekiq thread paid.
  #
  # Not thread-safe: the Reporter guards it with its mutex.
  class Buffer
    # The reports from sequence number +first_seq+ on, as taken by #peek: +joined+ holds them,
    # each followed by a comma, and +ends+ where each one's comma ends.
    class Batch
      attr_reader :first_seq

      # A batch of the given encoded reports (sync mode sends one at a time).
      def self.of(first_seq, reports)
        ends = []
        reports.each { |report| ends << (ends.last.to_i + report.bytesize + 1) }
        new(first_seq, reports.map { |report| "#{report}," }.join, ends)
      end

      def initialize(first_seq, joined, ends)
        @first_seq = first_seq
        @joined = joined
        @ends = ends
      end

      def size
        @ends.size
      end

      def body
        "{\"events\":[#{@joined.byteslice(0, [@joined.bytesize - 1, 0].max)}]}"
      end

      # The encoded report at +index+ (for the odd refusal: the hot path never splits a batch).
      def item(index)
        from = index.zero? ? 0 : @ends[index - 1]
        @joined.byteslice(from, @ends[index] - from - 1)
      end

      def items
        Array.new(size) { |index| item(index) }
      end
    end

    # Past this many bytes of consumed reports at the front, the String is compacted.
    COMPACT_AFTER = 1 << 20

    attr_reader :dropped, :head_seq

    def initialize(max_size:, max_bytes: nil)
      @max_size = [max_size.to_i, 1].max
      @max_bytes = max_bytes
      @data = String.new(encoding: Encoding::UTF_8)
      @start = 0 # where the oldest report begins in @data
      @ends = [] # where each report's trailing comma ends, oldest first
      @head_seq = 0 # sequence number of the oldest report
      @dropped = 0
    end

    # Adds a report; returns how many old reports it pushed out.
    def push(report)
      @data << report << ","
      @ends << @data.bytesize
      lost = 0
      while @ends.size > @max_size || (@max_bytes && bytes > @max_bytes && @ends.size > 1)
        forget(1)
        @dropped += 1
        lost += 1
      end
      lost
    end

    def size
      @ends.size
    end

    def empty?
      @ends.empty?
    end

    # The bytes of the reports held (without their separators).
    def bytes
      @data.bytesize - @start - @ends.size
    end

    # Sequence number the next pushed report will get.
    def next_seq
      @head_seq + @ends.size
    end

    # The oldest reports, at most +max_count+ of them and +max_bytes+ of body (but always one,
    # so that a single large report is sent and the supervisor decides), left in place.
    def peek(max_count, max_bytes = nil)
      count = [max_count, @ends.size].min
      count -= 1 while count > 1 && max_bytes && @ends[count - 1] - @start > max_bytes
      return Batch.new(@head_seq, "", []) if count.zero?

      ends = @ends.first(count).map! { |offset| offset - @start }
      Batch.new(@head_seq, @data.byteslice(@start, ends.last), ends)
    end

    # Forgets the reports of +batch+ that are still here.
    def ack(batch)
      count = (batch.first_seq + batch.size - @head_seq).clamp(0, @ends.size)
      forget(count)
      count
    end

    private

    def forget(count)
      return if count.zero?

      @start = @ends[count - 1]
      @ends.shift(count)
      @head_seq += count
      compact if @start > COMPACT_AFTER || @ends.empty?
    end

    def compact
      @data = @data.byteslice(@start, @data.bytesize - @start)
      @ends.map! { |offset| offset - @start }
      @start = 0
    end
  end
end
