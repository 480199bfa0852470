"""Roll-ups: the durations of deleted completed jobs, per class, origin and hour of completion.

Retention adds a job here in the transaction that deletes its row, so every job counts once. A
summary over roll-ups has an exact count, mean and maximum, and percentiles estimated from the
histograms (``domain.histogram``): answers built on them say so.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, and_, insert, select, update

from sidekiq_supervisor.domain.durations import DurationOrigin, DurationSummary, duration_of
from sidekiq_supervisor.domain.histogram import Histogram, estimate_summary, histogram_of, merged
from sidekiq_supervisor.domain.model import Micros, Timeline
from sidekiq_supervisor.store.schema import job_rollups

HOUR_MICROS = 3_600 * 1_000_000

Key = tuple[str, str, int]


def add_to_rollups(connection: Connection, rows: Sequence[Any]) -> None:
    """Add completed ``jobs`` rows (job_class, queued_at, started_at, completed_at) to the roll-ups."""
    durations: dict[Key, list[Micros]] = defaultdict(list)
    for row in rows:
        timeline = Timeline(row.queued_at, row.started_at, row.completed_at)
        hour = row.completed_at // HOUR_MICROS * HOUR_MICROS
        for origin in DurationOrigin:
            micros = duration_of(timeline, origin)
            if micros is not None:
                durations[row.job_class, origin.value, hour].append(micros)
    existing = _existing_rollups(connection, list(durations))
    for key, values in durations.items():
        histogram = histogram_of(values)
        before = existing.get(key)
        if before is None:
            connection.execute(
                insert(job_rollups).values(_rollup_row(key, len(values), sum(values), max(values), histogram))
            )
            continue
        count, total, longest, stored = before
        row = _rollup_row(
            key, count + len(values), total + sum(values), max(longest, *values), merged(stored, histogram)
        )
        connection.execute(update(job_rollups).where(*_key_matches(key)).values(row))


def _existing_rollups(connection: Connection, keys: list[Key]) -> dict[Key, tuple[int, int, int, Histogram]]:
    found: dict[Key, tuple[int, int, int, Histogram]] = {}
    for job_class in {key[0] for key in keys}:
        hours = [key[2] for key in keys if key[0] == job_class]
        query = select(job_rollups).where(
            job_rollups.c.job_class == job_class, job_rollups.c.hour.between(min(hours), max(hours))
        )
        for row in connection.execute(query):
            found[row.job_class, row.origin, row.hour] = (
                # Row.count is typed as tuple's method; SQLAlchemy serves the column under that name
                # at run time, but the mapping says so to a type checker too.
                row._mapping["count"],
                row.total_micros,
                row.max_micros,
                _histogram(row.histogram),
            )
    return found


def _rollup_row(key: Key, count: int, total: int, longest: int, histogram: Histogram) -> dict[str, Any]:
    job_class, origin, hour = key
    return {
        "job_class": job_class,
        "origin": origin,
        "hour": hour,
        "count": count,
        "total_micros": total,
        "max_micros": longest,
        "histogram": orjson.dumps({str(bucket): n for bucket, n in sorted(histogram.items())}).decode(),
    }


def _key_matches(key: Key) -> list[Any]:
    job_class, origin, hour = key
    return [
        and_(job_rollups.c.job_class == job_class, job_rollups.c.origin == origin, job_rollups.c.hour == hour)
    ]


def rollup_summary(
    connection: Connection,
    origin: DurationOrigin,
    *,
    job_class: str | None = None,
    since: Micros | None = None,
    until: Micros | None = None,
) -> DurationSummary:
    """The estimated summary of the rolled-up durations from ``origin``, for hours in [since, until)."""
    conditions = [job_rollups.c.origin == origin.value]
    if job_class is not None:
        conditions.append(job_rollups.c.job_class == job_class)
    if since is not None:
        conditions.append(job_rollups.c.hour >= since // HOUR_MICROS * HOUR_MICROS)
    if until is not None:
        conditions.append(job_rollups.c.hour < until)
    query = select(job_rollups.c.total_micros, job_rollups.c.max_micros, job_rollups.c.histogram).where(
        *conditions
    )
    total, longest = 0, 0
    histogram: Histogram = {}
    for row in connection.execute(query):
        total += row.total_micros
        longest = max(longest, row.max_micros)
        histogram = merged(histogram, _histogram(row.histogram))
    return estimate_summary(histogram, total, longest)


def _histogram(stored: str) -> Histogram:
    return {int(bucket): count for bucket, count in orjson.loads(stored).items()}
