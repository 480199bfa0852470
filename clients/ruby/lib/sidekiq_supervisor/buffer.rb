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
  # Not thread-safe: the Reporter guards it with its mutex.
  class Buffer
    # The reports from sequence number +first_seq+ on, as taken by #peek.
    Batch = Struct.new(:first_seq, :items) do
      def size
        items.size
      end

      def body
        "{\"events\":[#{items.join(",")}]}"
      end
    end

    attr_reader :dropped, :bytes, :head_seq

    def initialize(max_size:, max_bytes: nil)
      @max_size = [max_size.to_i, 1].max
      @max_bytes = max_bytes
      @items = []
      @bytes = 0
      @head_seq = 0 # sequence number of @items.first
      @dropped = 0
    end

    # Adds a report; returns how many old reports it pushed out.
    def push(item)
      @items << item
      @bytes += item.bytesize
      lost = 0
      while @items.size > @max_size || (@max_bytes && @bytes > @max_bytes && @items.size > 1)
        drop_oldest
        lost += 1
      end
      lost
    end

    def size
      @items.size
    end

    def empty?
      @items.empty?
    end

    # Sequence number the next pushed report will get.
    def next_seq
      @head_seq + @items.size
    end

    # The oldest reports, at most +max_count+ of them and +max_bytes+ of body (but always one,
    # so that a single large report is sent and the supervisor decides), left in place.
    def peek(max_count, max_bytes = nil)
      taken = []
      total = 0
      @items.each do |item|
        break if taken.size >= max_count
        break if max_bytes && !taken.empty? && total + item.bytesize + 1 > max_bytes

        taken << item
        total += item.bytesize + 1
      end
      Batch.new(@head_seq, taken)
    end

    # Forgets the reports of +batch+ that are still here.
    def ack(batch)
      count = (batch.first_seq + batch.size - @head_seq).clamp(0, @items.size)
      count.times { @bytes -= @items.shift.bytesize }
      @head_seq += count
      count
    end

    private

    def drop_oldest
      @bytes -= @items.shift.bytesize
      @head_seq += 1
      @dropped += 1
    end
  end
end
