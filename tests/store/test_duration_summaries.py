"""Duration summaries in SQL equal the domain's nearest-rank summary, on both databases."""

from __future__ import annotations

import random

import pytest

from sidekiq_supervisor.domain.durations import DurationOrigin, summarize
from sidekiq_supervisor.domain.model import EventKind, Report
from sidekiq_supervisor.store.engine import write_transaction
from sidekiq_supervisor.store.queries import JobFilter, duration_summary
from sidekiq_supervisor.store.writer import write_reports

T0 = 1_700_000_000_000_000


def seed(engine, count: int, rng: random.Random) -> dict[DurationOrigin, dict[str, list[int]]]:
    """``count`` completed jobs (a third tagged "tagged"), and their durations by origin and tag."""
    reports, durations = [], {origin: {"all": [], "tagged": []} for origin in DurationOrigin}
    for index in range(count):
        queued = T0 + index * 1000
        started = queued + rng.randrange(0, 5_000_000)
        # A few negative durations: clock skew between hosts is reported as measured.
        done = started + rng.randrange(-1_000, 90_000_000)
        arguments = '["tagged"]' if index % 3 == 0 else "[1]"
        for kind, at in (
            (EventKind.QUEUED, queued),
            (EventKind.STARTED, started),
            (EventKind.COMPLETE, done),
        ):
            reports.append(Report(f"j{index}", kind, at, "W", "default", arguments))
        for origin, begin in ((DurationOrigin.QUEUED, queued), (DurationOrigin.STARTED, started)):
            durations[origin]["all"].append(done - begin)
            if index % 3 == 0:
                durations[origin]["tagged"].append(done - begin)
    # A job that never completed counts in no summary.
    reports.append(Report("running", EventKind.STARTED, T0, "W", "default", '["tagged"]'))
    with write_transaction(engine) as connection:
        write_reports(connection, reports, T0)
    return durations


@pytest.mark.parametrize("count", [1, 2, 7, 20, 99, 100, 101, 1000])
def test_a_summary_equals_the_nearest_rank_summary_of_the_same_durations(engine, count):
    durations = seed(engine, count, random.Random(count))

    with engine.connect() as connection:
        for origin in DurationOrigin:
            for tag, needle in (("all", None), ("tagged", "tagged")):
                got = duration_summary(connection, origin, JobFilter(needle=needle))
                assert got == summarize(sorted(durations[origin][tag])), (origin, tag)


def test_a_summary_of_nothing_is_empty(engine):
    seed(engine, 3, random.Random(1))

    with engine.connect() as connection:
        summary = duration_summary(connection, DurationOrigin.QUEUED, JobFilter(needle="no such job"))

    assert summary.count == 0
    assert summary.p50 is None
