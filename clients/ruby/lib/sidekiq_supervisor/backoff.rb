# frozen_string_literal: true

module SidekiqSupervisor
  # Exponential retry delays: base, 2 x base, 4 x base... capped at max, each shortened by up
  # to +jitter+ (a fraction) so that the processes of a fleet do not retry in step after the
  # supervisor comes back.
  class Backoff
    attr_reader :failures

    def initialize(base:, max:, jitter: 0.2, random: Random.new)
      @base = base.to_f
      @max = [max.to_f, @base].max
      @jitter = jitter
      @random = random
      @failures = 0
    end

    # The delay before the next try, after one more failure.
    def next_delay
      exponent = [@failures, 30].min # 2**30 x any sane base is far past any sane cap
      @failures += 1
      delay = [@base * (2**exponent), @max].min
      delay * (1.0 - (@jitter * @random.rand))
    end

    def reset
      @failures = 0
    end
  end
end
