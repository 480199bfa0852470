"""``store.rollups.apply_changes`` adds changes in SQL (counts, sums, maxima and the histograms'
JSON merged by the database): on both databases its rows must be what ``Tally.plus`` makes of
the same changes in Python, through rows that appear, grow, shrink to zero and come back."""

from __future__ import annotations

import random

import orjson
from sqlalchemy import Engine, select

from sidekiq_supervisor.domain.durations import DurationOrigin
from sidekiq_supervisor.domain.histogram import upper_bound
from sidekiq_supervisor.domain.rollups import Grain, RollupKey, Tally
from sidekiq_supervisor.store.engine import write_transaction
from sidekiq_supervisor.store.rollups import apply_changes, histogram_of, histogram_text
from sidekiq_supervisor.store.schema import duration_rollups

T0 = 1_790_000_000_000_000
HOUR = 3_600_000_000
KEYS = [
    RollupKey(grain, start, job_class, "default", origin)
    for grain, start in ((Grain.HOUR, T0), (Grain.HOUR, T0 + HOUR), (Grain.ALL, 0))
    for job_class in ("Mailer", "Billing")
    for origin in DurationOrigin
]


def stored(engine: Engine) -> dict[str, tuple[int, int, int, dict[int, int]]]:
    with engine.connect() as connection:
        rows = connection.execute(select(duration_rollups)).mappings().all()
    return {
        row["key"]: (
            row["count"],
            row["total_micros"],
            row["max_micros"],
            histogram_of(row["histogram"]),
        )
        for row in rows
    }


def a_change(rng: random.Random, kept: Tally | None) -> Tally:
    """Some durations in and, from a kept row, some of its buckets out (jobs moving or deleted)."""
    change = Tally()
    for _ in range(rng.randrange(0, 4)):
        change.add(rng.choice((0, 1, 7, 950, 1_000, 64_000, 3_600_000_000)))
    if kept is None and rng.random() < 0.3:
        # A move out of a row that is not there (only a ledger written past the writer has
        # one): the count it leaves, zero or below, deletes the row as Python's addition does.
        change.add(rng.choice((7, 950)), -1)
    histogram = kept.histogram if kept is not None else {}
    held = sorted(bucket for bucket, n in histogram.items() if n > 0)
    for bucket in rng.sample(held, rng.randrange(0, len(held) + 1)):
        for _ in range(rng.randrange(1, histogram[bucket] + 1)):
            change.count -= 1
            change.total -= upper_bound(bucket)  # any sum: only the arithmetic is checked
            change.histogram[bucket] = change.histogram.get(bucket, 0) - 1
    return change


def test_applied_changes_equal_the_same_changes_added_in_python(engine: Engine) -> None:
    rng = random.Random(17)
    expected: dict[str, Tally] = {}
    emptied = 0
    for _ in range(60):
        changes = {}
        for key in rng.sample(KEYS, rng.randrange(1, len(KEYS) + 1)):
            change = a_change(rng, expected.get(key.text))
            if not change.is_empty():
                changes[key] = change
        with write_transaction(engine) as connection:
            apply_changes(connection, changes)
        for key, change in changes.items():
            after = expected.get(key.text, Tally()).plus(change)
            if after.count > 0:
                expected[key.text] = after
            elif expected.pop(key.text, None) is not None:
                emptied += 1
        assert stored(engine) == {k: (t.count, t.total, t.longest, t.histogram) for k, t in expected.items()}
    # The run went through rows emptied (and made again), not only through growing ones.
    assert emptied > 5 and expected


def test_a_merged_histogram_is_written_as_the_writer_writes_one(engine: Engine) -> None:
    key = KEYS[0]
    first, second = Tally(), Tally()
    for micros in (3, 3, 950, 64_000):
        first.add(micros)
    for micros in (950, 3_600_000_000):
        second.add(micros)
    second.add(3, -1)
    for change in (first, second):
        with write_transaction(engine) as connection:
            apply_changes(connection, {key: change})
    with engine.connect() as connection:
        text = connection.execute(select(duration_rollups.c.histogram)).scalar_one()
    # Compact JSON, no bucket at zero: what histogram_text makes of the sum.
    assert orjson.loads(text) == orjson.loads(histogram_text(first.plus(second).histogram))
    assert " " not in text
