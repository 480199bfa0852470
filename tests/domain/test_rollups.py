"""The roll-ups' rules: where a completed job counts, how a change moves it, which periods a
window reads."""

from __future__ import annotations

from sidekiq_supervisor.domain.durations import DurationOrigin
from sidekiq_supervisor.domain.histogram import bucket_of
from sidekiq_supervisor.domain.model import Timeline
from sidekiq_supervisor.domain.rollups import (
    DAY,
    HOUR,
    Grain,
    RollupKey,
    Tally,
    Window,
    changes,
    contributions,
    pruned,
    summed,
    window_periods,
)

T0 = 1_790_000_000_000_000  # a Saturday, 13:33 UTC
SECOND = 1_000_000


def done(queued: int, started: int, completed: int) -> Timeline:
    return Timeline(T0 + queued, T0 + started, T0 + completed, attempts=1)


def test_a_job_counts_only_once_complete_in_its_hour_day_and_all_for_each_known_duration():
    assert contributions("Mailer", "mailers", None) == []
    assert contributions("Mailer", "mailers", Timeline(T0, T0 + SECOND)) == []  # running
    # Started again after it completed: running again, it counts nowhere.
    assert contributions("Mailer", "mailers", done(0, 5 * SECOND, 2 * SECOND)) == []

    counted = dict(contributions("Mailer", "mailers", done(0, SECOND, 3 * SECOND)))

    completed = T0 + 3 * SECOND
    hour, day = completed // HOUR * HOUR, completed // DAY * DAY
    assert counted == {
        RollupKey(grain, start, "Mailer", "mailers", origin): micros
        for origin, micros in ((DurationOrigin.QUEUED, 3 * SECOND), (DurationOrigin.STARTED, 2 * SECOND))
        for grain, start in ((Grain.HOUR, hour), (Grain.DAY, day), (Grain.ALL, 0))
    }
    # A completion reported without its start counts from queued only.
    assert {key.origin for key, _ in contributions("Mailer", "mailers", Timeline(T0, None, T0 + SECOND))} == {
        DurationOrigin.QUEUED
    }


def test_a_job_counts_under_its_class_and_queue_and_a_key_names_both_unambiguously():
    timeline = done(0, SECOND, 3 * SECOND)
    on_mailers = {key for key, _ in contributions("Mailer", "mailers", timeline)}
    on_default = {key for key, _ in contributions("Mailer", "default", timeline)}

    assert {key.queue for key in on_mailers} == {"mailers"} and on_mailers.isdisjoint(on_default)
    # A class's jobs on two queues are two sets of roll-ups, each as many as one queue's.
    assert len(on_mailers) == len(on_default) == 6
    # Names may hold the separator: the key still tells "A|B" on "C" from "A" on "B|C".
    first = RollupKey(Grain.ALL, 0, "A|B", "C", DurationOrigin.QUEUED)
    second = RollupKey(Grain.ALL, 0, "A", "B|C", DurationOrigin.QUEUED)
    assert first.text != second.text
    # A job that moves within its class and queue moves only there.
    moved = changes([("Mailer", "mailers", timeline, done(-SECOND, SECOND, 3 * SECOND))])
    assert {key.queue for key in moved} == {"mailers"}


def test_a_change_takes_out_what_the_job_counted_and_puts_in_what_it_counts_now():
    before = done(0, SECOND, 3 * SECOND)
    assert changes([("Mailer", "mailers", before, before)]) == {}
    assert changes([("Mailer", "mailers", None, Timeline(T0))]) == {}  # queued: nothing to count

    # A late queued report, earlier: only the queued durations move (within the same periods).
    moved = changes([("Mailer", "mailers", before, done(-SECOND, SECOND, 3 * SECOND))])
    assert {key.origin for key in moved} == {DurationOrigin.QUEUED}
    for tally in moved.values():
        assert (tally.count, tally.total) == (0, SECOND)
        assert tally.histogram == {bucket_of(3 * SECOND): -1, bucket_of(4 * SECOND): 1}

    # Out altogether: a second run started after the completion.
    gone = changes([("Mailer", "mailers", before, done(0, 4 * SECOND, 3 * SECOND))])
    assert all(tally.count == -1 for tally in gone.values()) and len(gone) == 6


def test_retention_moves_a_job_from_its_kept_periods_to_pruned():
    moved = pruned([("Mailer", "mailers", done(0, SECOND, 3 * SECOND))])

    kept = {key: tally for key, tally in moved.items() if key.grain is not Grain.PRUNED}
    assert len(kept) == 6 and all(tally.count == -1 for tally in kept.values())
    assert {key: tally.count for key, tally in moved.items() if key.grain is Grain.PRUNED} == {
        RollupKey(Grain.PRUNED, 0, "Mailer", "mailers", DurationOrigin.QUEUED): 1,
        RollupKey(Grain.PRUNED, 0, "Mailer", "mailers", DurationOrigin.STARTED): 1,
    }


def test_tallies_add_up_and_summarise_with_estimated_percentiles():
    first, second = Tally(), Tally()
    for micros in (1_000, 2_000, 3_000):
        first.add(micros)
    second.add(10_000)
    second.add(1_000, -1)  # taken out: the count drops, the maximum stays

    total = summed([first, second])

    assert (total.count, total.total, total.longest) == (3, 15_000, 10_000)
    summary = total.summary()
    assert summary.percentiles_estimated and summary.count == 3
    assert summary.mean is not None and summary.mean.microseconds == 5_000
    assert bucket_of(1_000) not in total.histogram  # its count came back to zero: dropped


def test_each_window_reads_the_periods_it_names():
    now = T0 + 45 * 60 * SECOND
    hour = now // HOUR * HOUR
    assert window_periods(Window.HOUR, now) == (Grain.HOUR, hour - HOUR)
    assert window_periods(Window.DAY, now) == (Grain.HOUR, hour - 23 * HOUR)
    assert window_periods(Window.WEEK, now) == (Grain.DAY, now // DAY * DAY - 6 * DAY)
    assert window_periods(Window.ALL, now) == (Grain.ALL, None)
