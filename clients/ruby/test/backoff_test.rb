# frozen_string_literal: true

require "test_helper"

class BackoffTest < SupervisorTest
  def test_delays_double_from_the_base_up_to_the_cap_and_reset_after_success
    backoff = SidekiqSupervisor::Backoff.new(base: 0.5, max: 30, jitter: 0)

    delays = Array.new(9) { backoff.next_delay }

    assert_equal [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0], delays
    backoff.reset
    assert_equal 0.5, backoff.next_delay
  end

  def test_jitter_only_shortens_a_delay
    backoff = SidekiqSupervisor::Backoff.new(base: 1, max: 1, jitter: 0.2)

    delays = Array.new(50) { backoff.next_delay }

    assert delays.all? { |d| d > 0.79 && d <= 1.0 }, delays.inspect
  end
end
