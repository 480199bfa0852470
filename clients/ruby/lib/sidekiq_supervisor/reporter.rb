# frozen_string_literal: true

require "json"
require_relative "backoff"
require_relative "buffer"
require_relative "log_throttle"
require_relative "transport"

module SidekiqSupervisor
  # Takes reports from the middlewares and gets them to the supervisor.
  #
  # Async mode (the default): #record encodes the report and appends it to the Buffer; one
  # background thread, started on the first report, sends the buffer in batches and retries
  # with exponential backoff while the supervisor is unreachable or busy. A job thread never
  # waits on the network. Sync mode: #record sends the report at once, in the caller's thread.
  #
  # No method raises: every failure is logged (throttled) and swallowed.
  class Reporter
    # A Retry-After beyond this is treated as this: the buffer would overflow anyway.
    MAX_RETRY_AFTER = 300.0

    attr_reader :pid

    def initialize(config, logger: config.effective_logger, transport: nil)
      @logger = logger
      @sync = config.sync?
      @batch_size = config.effective_batch_size
      @batch_limit = @batch_size # shrinks on 413, grows back on success
      @max_request_bytes = config.max_request_bytes
      @flush_interval = config.flush_interval.to_f
      @shutdown_timeout = config.shutdown_timeout.to_f
      @transport = transport || Transport.new(
        config.endpoint, token: config.bearer_token, open_timeout: config.open_timeout,
                         read_timeout: config.read_timeout, write_timeout: config.write_timeout
      )
      @buffer = Buffer.new(max_size: config.buffer_size, max_bytes: config.buffer_bytes)
      @backoff = Backoff.new(base: config.retry_base, max: config.retry_max)
      @throttle = LogThrottle.new
      @mutex = Mutex.new
      @wakeup = ConditionVariable.new   # the sender waits on it for reports, flushes and stops
      @progress = ConditionVariable.new # flushers wait on it for the buffer's head to move on
      @send_lock = Mutex.new            # sync mode: one request at a time on the connection
      @thread = nil
      @stopping = false
      @flush_target = -1     # every report up to this sequence number is wanted out now
      @flush_generation = 0  # bumped by each flush, so that a backoff wait ends early
      @counts = Hash.new(0)
      @pid = Process.pid
    end

    # Queues (or, in sync mode, sends) one report: JSON text (see Report), or a Hash shaped as
    # the wire contract says.
    def record(report)
      line = report.is_a?(String) ? report : JSON.generate(report)
      @sync ? send_now(line) : enqueue(line)
      nil
    rescue StandardError => e
      log_throttled(:record, :error, "could not record a report: #{e.class}: #{e.message}")
      nil
    end

    # Queues (or sends) the report whose JSON text is +head+, +fields+, +at_key+, +at+ and
    # +tail+ put together (see JobReports), without putting them together: in async mode the
    # pieces are written straight into the buffer, so that the job's thread allocates no String
    # for the report itself.
    def record_parts(head, fields, at_key, at, tail)
      if @sync
        send_now("#{head}#{fields}#{at_key}#{at}#{tail}")
      else
        enqueue_parts(head, fields, at_key, at, tail)
      end
      nil
    rescue StandardError => e
      log_throttled(:record, :error, "could not record a report: #{e.class}: #{e.message}")
      nil
    end

    # Waits until every report recorded before the call is delivered (or given up), at most
    # +timeout+ seconds. True when the buffer got that far.
    def flush(timeout = @shutdown_timeout)
      deadline = monotonic + timeout.to_f
      @mutex.synchronize do
        return true if @buffer.empty?

        target = @buffer.next_seq - 1
        @flush_target = [@flush_target, target].max
        @flush_generation += 1
        start_sender
        @wakeup.broadcast
        until @buffer.head_seq > target
          left = deadline - monotonic
          return false if left <= 0

          @progress.wait(@mutex, left)
        end
        true
      end
    rescue StandardError => e
      log(:error, "flush failed: #{e.class}: #{e.message}")
      false
    end

    # Flushes (bounded by +timeout+), then stops the sender thread. Reports recorded after
    # this are counted as dropped: the process is on its way out.
    def shutdown(timeout = @shutdown_timeout)
      deadline = monotonic + timeout.to_f
      delivered = flush(timeout)
      thread = @mutex.synchronize do
        @stopping = true
        @wakeup.broadcast
        @thread
      end
      # A sender stuck in a request to a hung supervisor is left to the process's exit.
      thread&.join([deadline - monotonic, 0.1].max)
      @transport.close unless thread&.alive?
      counts = stats
      log(:warn, "#{counts[:buffered]} reports not delivered at shutdown") if counts[:buffered].positive?
      warn_dropped_in_all(counts)
      delivered
    rescue StandardError => e
      log(:error, "shutdown failed: #{e.class}: #{e.message}")
      false
    end

    # Counters since this reporter was built: reports delivered (stored by the supervisor),
    # rejected (refused as invalid, not retried), dropped (pushed out of the full buffer, or
    # recorded after shutdown), failed (sync mode: not delivered), requests that failed, and
    # reports buffered now.
    def stats
      @mutex.synchronize do
        {
          delivered: @counts[:delivered], rejected: @counts[:rejected],
          dropped: @buffer.dropped + @counts[:late], failed: @counts[:failed],
          failed_requests: @counts[:failed_requests], buffered: @buffer.size
        }
      end
    end

    def dropped_count
      stats[:dropped]
    end

    private

    # --- the job threads' side ------------------------------------------------------------

    def enqueue(line)
      dropped_total = @mutex.synchronize do
        next late unless accepting?

        pushed(@buffer.push(line))
      end
      warn_dropped(dropped_total) if dropped_total
    end

    def enqueue_parts(head, fields, at_key, at, tail)
      dropped_total = @mutex.synchronize do
        next late unless accepting?

        pushed(@buffer.push_parts(head, fields, at_key, at, tail))
      end
      warn_dropped(dropped_total) if dropped_total
    end

    # Under @mutex: whether a report may join the buffer (not once stopping); starts the sender
    # if need be. Wakes the sender when a batch begins (to start its flush_interval): the
    # buffer was empty before this report.
    def accepting?
      return false if @stopping

      start_sender unless @thread&.alive?
      @wakeup.signal if @buffer.empty?
      true
    end

    # Under @mutex: a report recorded after shutdown, counted as dropped. Nil (nothing to log).
    def late
      @counts[:late] += 1
      nil
    end

    # Under @mutex, after a push that pushed out +lost+ old reports: wakes the sender when the
    # batch has just filled up (it checks the size itself once awake, and each needless signal
    # costs a job thread time), and any flush the drop may satisfy. The dropped total when a
    # warning is due, else nil.
    def pushed(lost)
      @wakeup.signal if @buffer.size == @batch_limit
      return nil unless lost.positive?

      @progress.broadcast
      @buffer.dropped if @throttle.allow?(:dropped)
    end

    # At shutdown: every report the full buffer dropped, which the throttled warnings (once a
    # minute) leave uncounted after the first.
    def warn_dropped_in_all(counts)
      return unless counts[:dropped].positive?

      log(:warn, "#{counts[:dropped]} reports dropped in all because the buffer was full " \
                 "(the supervisor was unreachable or slower than the jobs), #{counts[:delivered]} delivered")
    end

    def warn_dropped(dropped_total)
      log(:warn, "buffer full (the supervisor is unreachable or slow): dropped the oldest reports, " \
                 "#{dropped_total} so far")
    end

    def send_now(line)
      batch = Buffer::Batch.of(0, [line])
      outcome, = @send_lock.synchronize { attempt(batch) }
      @mutex.synchronize { @counts[:failed] += 1 } unless %i[delivered rejected].include?(outcome)
    end

    def start_sender
      return if @thread&.alive?

      @thread = Thread.new { run }
    end

    # --- the sender thread ----------------------------------------------------------------

    def run
      Thread.current.name = "sidekiq-supervisor"
      Thread.current.report_on_exception = false
      loop do
        break unless wait_for_work
        break unless drain
      end
    rescue StandardError => e
      # A bug, not an outage: say so; the next report starts a new sender.
      log(:error, "sender stopped: #{e.class}: #{e.message}")
    end

    # Blocks until there is something to send, then lets a batch gather for flush_interval
    # unless it fills up or a flush or stop is asked for. False once stopping with nothing left.
    def wait_for_work
      @mutex.synchronize do
        @wakeup.wait(@mutex) while @buffer.empty? && !@stopping
        return false if @buffer.empty?

        deadline = monotonic + @flush_interval
        until @stopping || flush_wanted? || @buffer.size >= @batch_limit
          left = deadline - monotonic
          break if left <= 0

          @wakeup.wait(@mutex, left)
        end
        true
      end
    end

    # Sends batches while a full one is ready (or a flush or stop wants everything out); true
    # when the rest may wait for flush_interval to gather more. When a send fails, it waits out
    # the backoff and returns true to try again, or false when stopping. Full batches mean
    # fewer requests: each costs the supervisor a transaction and this process a round trip.
    def drain
      due = true # wait_for_work returns when the buffer's oldest report has waited long enough
      loop do
        batch = @mutex.synchronize { next_batch(due) }
        return true unless batch

        due = false

        outcome, retry_after = attempt(batch)
        case outcome
        when :delivered, :rejected then acknowledge(batch)
        when :too_large then due = shrink(batch)
        else
          release
          return pause(retry_after)
        end
      end
    end

    def acknowledge(batch)
      @mutex.synchronize do
        @buffer.ack(batch)
        @batch_limit = [@batch_limit * 2, @batch_size].min
        @progress.broadcast
      end
      return unless @backoff.failures.positive?

      log(:info, "the supervisor answers again after #{@backoff.failures} failed attempts")
      @backoff.reset
    end

    # 413: the supervisor takes fewer reports per request. A single report it refuses is
    # given up; otherwise the same reports go again, half as many at a time.
    # True: what is left was due already, so it goes at once.
    def shrink(batch)
      if batch.size > 1
        @mutex.synchronize { @batch_limit = [batch.size / 2, 1].max }
        release
        return true
      end
      @mutex.synchronize { @counts[:rejected] += 1 }
      log_throttled(:too_large, :error, "the supervisor refused a report as too large (413); dropped it")
      acknowledge(batch)
      true
    end

    # Waits before the next try: the backoff delay, or longer when the supervisor asked for
    # it with Retry-After. A flush cuts our own backoff short, never the server's Retry-After.
    def pause(retry_after)
      delay = @backoff.next_delay
      delay = [delay, [retry_after, MAX_RETRY_AFTER].min].max if retry_after
      @mutex.synchronize do
        generation = @flush_generation
        deadline = monotonic + delay
        until @stopping || (retry_after.nil? && generation != @flush_generation)
          left = deadline - monotonic
          break if left <= 0

          @wakeup.wait(@mutex, left)
        end
        !@stopping
      end
    end

    # The batch sent was not stored: those of its reports pushed out of the full buffer while
    # it was out are lost now (the rest go again).
    def release
      lost = @mutex.synchronize do
        @buffer.release.tap { |count| @progress.broadcast if count.positive? }
      end
      warn_dropped(dropped_count) if lost.positive? && @throttle.allow?(:dropped)
    end

    def flush_wanted?
      @flush_target >= @buffer.head_seq
    end

    # The batch to send now, or nil when the buffer is empty or the batch may still grow.
    def next_batch(due)
      return nil if @buffer.empty?
      return nil unless due || @stopping || flush_wanted? || @buffer.size >= @batch_limit

      @buffer.take(@batch_limit, @max_request_bytes)
    end

    # --- one request, in either mode ------------------------------------------------------

    # Sends +batch+ once. Returns [:delivered | :rejected | :too_large | :retry, retry_after].
    def attempt(batch)
      response = @transport.post(batch.body)
    rescue StandardError => e
      failed_request("cannot reach the supervisor (#{e.class}: #{e.message})", batch)
    else
      judge(response, batch)
    end

    def judge(response, batch)
      case response.verdict
      when :stored then stored(response, batch)
      when :too_large then [:too_large, nil]
      when :refused
        @mutex.synchronize { @counts[:rejected] += batch.size }
        log_throttled(:refused, :error, "the supervisor refused a batch of #{batch.size} reports " \
                                        "(#{response.status}: #{response.excerpt}); dropped it: a client bug")
        [:rejected, nil]
      when :unauthorized
        failed_request("the supervisor refused the token (#{response.status}): check SIDEKIQ_SUPERVISOR_TOKEN " \
                       "or the password in SIDEKIQ_SUPERVISOR_HOST", batch, response.retry_after, kind: :auth)
      else
        failed_request("the supervisor answered #{response.status} (#{response.excerpt})", batch, response.retry_after)
      end
    end

    # A 2xx: the supervisor stored the batch, except the items it refused (logged, never
    # resent: the same report would be refused again).
    def stored(response, batch)
      refused = response.refused_items
      @mutex.synchronize do
        @counts[:delivered] += batch.size - refused.size
        @counts[:rejected] += refused.size
      end
      unless refused.empty?
        index, result = refused.first
        example = describe_refusal(index < batch.size ? batch.item(index) : nil, result)
        log_throttled(:refused_items, :warn, "the supervisor rejected #{refused.size} of #{batch.size} reports " \
                                             "(not retried): #{example}")
      end
      [:delivered, nil]
    end

    def describe_refusal(line, result)
      report = line ? JSON.parse(line) : {}
      details = Array(result["detail"]).map { |d| d.is_a?(Hash) ? "#{Array(d["loc"]).last}: #{d["msg"]}" : d }
      "#{report["event"]} #{report["job_class"]} #{report["job_id"]}: #{details.join("; ")}"
    end

    def failed_request(message, batch, retry_after = nil, kind: :unreachable)
      buffered = @mutex.synchronize do
        @counts[:failed_requests] += 1
        @buffer.size
      end
      level = kind == :auth ? :error : :warn
      outcome = @sync ? "#{batch.size} report lost" : "#{buffered} reports buffered, retrying"
      log_throttled(kind, level, "#{message}; #{outcome}")
      [:retry, retry_after]
    end

    # --- helpers ------------------------------------------------------------------------

    def log_throttled(kind, level, message)
      log(level, message) if @throttle.allow?(kind)
    end

    def log(level, message)
      @logger&.public_send(level, "sidekiq-supervisor: #{message}")
    rescue StandardError
      nil # a broken logger must not break a job either
    end

    def monotonic
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end
  end
end
