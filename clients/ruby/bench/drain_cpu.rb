# frozen_string_literal: true

# The gem's cost inside a real Sidekiq 6.4.1 (or whichever Sidekiq Ruby finds): one process runs
# Sidekiq's own Launcher (concurrency 10) in-process on no-op jobs, and measures, while the queue
# drains, the drain rate, the process's CPU time per job (CLOCK_PROCESS_CPUTIME_ID), the GC runs
# and the objects allocated per job. Jobs are pushed straight to Redis (no client middleware),
# and 500 warm-up jobs run first, so the figures are the steady state of the server middleware
# and the sender. With the gem, it also times the server middleware on each job's thread
# (CLOCK_THREAD_CPUTIME_ID around the middleware, less the job it yields to: mw_us, which
# includes the timing's own cost of about half a microsecond). Prints one line of JSON: the median
# of ROUNDS drains (default 3).
#
#   REDIS_URL=redis://127.0.0.1:6391/0 SIDEKIQ_SUPERVISOR_HOST=http://127.0.0.1:8000 \
#     taskset -c 0 ruby bench/drain_cpu.rb VARIANT JOBS
#
# VARIANT: "none" (bare Sidekiq), "passthru" (a server middleware that only yields) or a
# directory holding a copy of the gem's lib (e.g. `git archive BASE clients/ruby/lib | tar -x -C
# /tmp/before`). Compare variants in interleaved runs, fresh processes each: single runs vary by
# tens of percent on a shared machine.
require "sidekiq"
require "sidekiq/cli" # Sidekiq.server? is true: configure_server blocks run, the pool fits 10 threads
require "sidekiq/launcher"
require "json"
require "securerandom"

Redis.silence_deprecations = true if defined?(Redis) && Redis.respond_to?(:silence_deprecations=)
Sidekiq.options[:concurrency] = 10

# A server middleware that does nothing but run the job: the cost of one more middleware.
class Passthru
  def call(_worker, _job, _queue)
    yield
  end
end

class NoopJob
  include Sidekiq::Worker

  def perform(number); end
end

variant = ARGV.fetch(0)
jobs = Integer(ARGV.fetch(1))
case variant
when "none" then nil
when "passthru" then Sidekiq.configure_server { |c| c.server_middleware { |chain| chain.prepend(Passthru) } }
else
  $LOAD_PATH.unshift(File.expand_path(variant))
  require "sidekiq_supervisor"

  # The thread CPU time the gem's server middleware takes per job, between Sidekiq's own work:
  # a hot loop of the same calls says two to three times less.
  module MiddlewareTiming
    CLOCK = Process::CLOCK_THREAD_CPUTIME_ID
    TOTAL = [0, 0] # rubocop:disable Style/MutableConstant -- nanoseconds, jobs: added to by every job thread

    def call(worker, job, queue)
      began = Process.clock_gettime(CLOCK, :nanosecond)
      inner = 0
      result = super do
        job_began = Process.clock_gettime(CLOCK, :nanosecond)
        value = yield
        inner += Process.clock_gettime(CLOCK, :nanosecond) - job_began
        value
      end
      TOTAL[0] += Process.clock_gettime(CLOCK, :nanosecond) - began - inner
      TOTAL[1] += 1
      result
    end
  end
  SidekiqSupervisor::ServerMiddleware.prepend(MiddlewareTiming)
end
Sidekiq.logger = Logger.new(File::NULL)

# Pushes +count+ jobs in one LPUSH: Sidekiq cannot fetch any of them before they are all there,
# so the clock starts with the whole queue waiting.
def push(count)
  now = Time.now.to_f
  payloads = Array.new(count) do |n|
    JSON.generate({ "retry" => true, "queue" => "default", "class" => "NoopJob", "args" => [n],
                    "jid" => SecureRandom.hex(12), "created_at" => now, "enqueued_at" => now })
  end
  Sidekiq.redis { |conn| conn.lpush("queue:default", payloads) }
end

def wait_drained
  sleep 0.005 until Sidekiq.redis { |c| c.llen("queue:default") }.zero? && Sidekiq::Processor::WORKER_STATE.size.zero?
end

def drain(jobs)
  SidekiqSupervisor.flush if defined?(SidekiqSupervisor)
  GC.start
  push(jobs)
  gc0 = GC.stat
  timed0 = defined?(MiddlewareTiming) ? MiddlewareTiming::TOTAL.dup : [0, 0]
  t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  c0 = Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID)
  wait_drained
  t1 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  c1 = Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID)
  gc1 = GC.stat
  timed1 = defined?(MiddlewareTiming) ? MiddlewareTiming::TOTAL.dup : [0, 0]
  { rate: jobs / (t1 - t0), cpu_us: (c1 - c0) / jobs * 1e6, gc: gc1[:count] - gc0[:count],
    alloc: (gc1[:total_allocated_objects] - gc0[:total_allocated_objects]).fdiv(jobs),
    mw_us: (timed1[0] - timed0[0]) / 1000.0 / [timed1[1] - timed0[1], 1].max }
end

Sidekiq.redis(&:flushdb)
push(500)
launcher = Sidekiq::Launcher.new(Sidekiq.options.merge(queues: ["default"], timeout: 5))
launcher.run
wait_drained # warm-up: the reporter, its connection, each thread's caches
results = Array.new(Integer(ENV.fetch("ROUNDS", "3"))) { drain(jobs) }
median = ->(key) { results.map { |r| r[key] }.sort[results.size / 2] }
puts JSON.generate({ variant: variant, jobs: jobs, rate: median[:rate].round, cpu_us: median[:cpu_us].round(1),
                     gc: median[:gc], alloc: median[:alloc].round(1), mw_us: median[:mw_us].round(2) })
launcher.stop
SidekiqSupervisor.shutdown(2) if defined?(SidekiqSupervisor)
exit!(0)
