# frozen_string_literal: true

require "json"
require "monitor"
require "webrick"

# A stand-in for the supervisor's batch route on 127.0.0.1, run by WEBrick in this process.
# It records every request and answers as told: by default 200 with one result per event,
# like the service; or, in turn, the answers queued with #answer (a status, a hang, or a
# proc). It can also refuse batches above a size with 413, as the service does.
class SupervisorServer
  Request = Struct.new(:path, :headers, :body, :events, :peer_port, :received_at, :status, keyword_init: true)

  attr_reader :port
  attr_accessor :max_events

  def initialize(port: 0)
    @lock = Monitor.new
    @released = @lock.new_cond
    @requests = []
    @answers = []
    @max_events = nil
    @closing = false
    @server = WEBrick::HTTPServer.new(
      BindAddress: "127.0.0.1", Port: port,
      Logger: WEBrick::Log.new(File::NULL), AccessLog: [], RequestTimeout: 5
    )
    @port = @server.config[:Port]
    @server.mount_proc("/") { |req, res| handle(req, res) }
    @thread = Thread.new { @server.start }
    Thread.pass until @server.status == :Running
  end

  def url(userinfo: nil)
    userinfo ? "http://#{userinfo}@127.0.0.1:#{@port}" : "http://127.0.0.1:#{@port}"
  end

  # Queues answers for the next requests, in order: an Integer status, a Hash
  # {status:, headers:, body:, hang:}, or a proc(request) returning such a Hash.
  def answer(*answers)
    @lock.synchronize { @answers.concat(answers) }
    self
  end

  def requests
    @lock.synchronize { @requests.dup }
  end

  # Events of the requests answered 2xx, in the order they arrived.
  def delivered_events
    requests.select { |r| r.status.is_a?(Integer) && r.status < 300 }.flat_map(&:events)
  end

  # Waits until +count+ events were delivered (or +timeout+ passed); returns them.
  def wait_for_events(count, timeout: 5)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    loop do
      events = delivered_events
      return events if events.size >= count || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep 0.01
    end
  end

  def wait_for_requests(count, timeout: 5)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    sleep 0.01 while requests.size < count && Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
    requests
  end

  def stop
    @lock.synchronize do
      @closing = true
      @released.broadcast # end any hang now
    end
    @server.shutdown
    @thread.join(2)
  end

  private

  def handle(req, res)
    events = parse_events(req.body)
    record = Request.new(
      path: req.path, headers: req.header.transform_values(&:first), body: req.body.to_s,
      events: events, peer_port: req.peeraddr[1], received_at: Process.clock_gettime(Process::CLOCK_MONOTONIC)
    )
    answer = @lock.synchronize do
      @requests << record
      @answers.shift
    end
    answer = answer.call(record) if answer.respond_to?(:call)
    answer = { status: answer } if answer.is_a?(Integer)
    answer ||= default_answer(events)
    if answer[:hang]
      record.status = :hung # the client gave up on it (or will): not delivered
      hang(answer[:hang])
      return respond(req, res, 200, answer, events)
    end
    record.status = answer.fetch(:status, 200)
    respond(req, res, record.status, answer, events)
  end

  def default_answer(events)
    return { status: 200 } unless @max_events && events.size > @max_events

    { status: 413, body: { error: "a batch holds at most #{@max_events} events" } }
  end

  def respond(req, res, status, answer, events)
    res.status = status
    (answer[:headers] || {}).each { |name, value| res[name] = value }
    res["Content-Type"] = "application/json"
    body = answer[:body] || (status == 200 ? results(events, minimal: minimal?(req)) : { error: "status #{status}" })
    res.body = body.is_a?(String) ? body : JSON.generate(body)
  end

  # The service's answer: one result per item, or only the refused ones (none) when the
  # client prefers a minimal answer.
  def results(events, minimal: false)
    return { stored: events.size, rejected: 0, refused: [] } if minimal

    { stored: events.size, rejected: 0,
      results: events.map { |e| { status: 201, jid: e["job_id"], job_status: e["event"] } } }
  end

  def minimal?(req)
    req["Prefer"].to_s.include?("return=minimal")
  end

  def hang(seconds)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
    @lock.synchronize do
      until @closing
        left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
        break if left <= 0

        @released.wait(left)
      end
    end
  end

  def parse_events(body)
    JSON.parse(body.to_s).fetch("events", [])
  rescue JSON::ParserError
    []
  end
end
