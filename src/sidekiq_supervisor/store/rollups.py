"""The duration roll-ups (``duration_rollups``, ``domain.rollups``): the writer counts a job in the
transaction that stores its completion, and retention moves it to the ``pruned`` grain in the one
that deletes its row. The pages, the API and the console read their duration summaries here: of
every job, a class, a queue, or a class on a queue (rows are per class and queue, and add up).

A summary over roll-ups has an exact count and mean, and percentiles estimated from the
histograms (``domain.histogram``): answers built on them say so.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from sqlalchemy import ColumnElement, Connection, delete, func, select

from sidekiq_supervisor.domain.durations import DurationOrigin, DurationSummary
from sidekiq_supervisor.domain.histogram import Histogram
from sidekiq_supervisor.domain.model import Micros
from sidekiq_supervisor.domain.rollups import Grain, RollupKey, Tally, summed
from sidekiq_supervisor.store.bulk import insert_updating_on_conflict
from sidekiq_supervisor.store.schema import duration_rollups

ROLLUP_COLUMNS = [
    "key",
    "grain",
    "start",
    "job_class",
    "queue",
    "origin",
    "count",
    "total_micros",
    "max_micros",
    "histogram",
]
# The larger of two values, in each database's SQL.
GREATEST = {"sqlite": "max", "postgresql": "GREATEST"}
# A stored histogram with the colliding row's added: the buckets' counts summed, those at zero
# dropped, written as ``histogram_text`` writes it (compact JSON; on SQLite the buckets come in the
# order its subquery yields them, which readers do not rely on).
MERGED_HISTOGRAM = {
    "sqlite": (
        "(SELECT json_group_object(bucket, n) FROM (SELECT bucket, sum(n) AS n FROM ("
        "SELECT key AS bucket, value AS n FROM json_each(duration_rollups.histogram) "
        "UNION ALL SELECT key, value FROM json_each(excluded.histogram)) "
        "GROUP BY bucket HAVING sum(n) <> 0 ORDER BY CAST(bucket AS INTEGER)))"
    ),
    "postgresql": (
        "(SELECT coalesce('{' || string_agg('\"' || bucket || '\":' || n, ',' ORDER BY bucket::int)"
        " || '}', '{}') FROM (SELECT bucket, sum(n) AS n FROM ("
        "SELECT key AS bucket, value::bigint AS n FROM json_each_text(duration_rollups.histogram::json) "
        "UNION ALL SELECT key, value::bigint FROM json_each_text(excluded.histogram::json)) AS parts "
        "GROUP BY bucket HAVING sum(n) <> 0) AS sums)"
    ),
}
# Keeps each statement's bind parameters well inside both databases' limits.
CHUNK = 500

ClassOrigin = tuple[str, DurationOrigin]


def apply_changes(connection: Connection, changes: Mapping[RollupKey, Tally]) -> None:
    """Apply ``changes`` (``domain.rollups.changes``) to ``duration_rollups``, inside the caller's
    transaction; a row whose count reaches zero is deleted.

    Each change is added in the statement that inserts or updates its row, histograms merged by
    the database (``MERGED_HISTOGRAM``): nothing is read back into Python, and concurrent writers
    on PostgreSQL, which lock the rows in key order (after the jobs rows the caller locked), wait
    for each other, lose no change and never deadlock.
    """
    ordered = sorted((key.text, key, tally) for key, tally in changes.items())
    assignments = [
        "count = duration_rollups.count + excluded.count",
        "total_micros = duration_rollups.total_micros + excluded.total_micros",
        f"max_micros = {GREATEST[connection.dialect.name]}(duration_rollups.max_micros, excluded.max_micros)",
        f"histogram = {MERGED_HISTOGRAM[connection.dialect.name]}",
    ]
    for start in range(0, len(ordered), CHUNK):
        rows = [
            (
                text,
                key.grain.value,
                key.start,
                key.job_class,
                key.queue,
                key.origin.value,
                tally.count,
                tally.total,
                tally.longest,
                histogram_text(tally.histogram),
            )
            for text, key, tally in ordered[start : start + CHUNK]
        ]
        insert_updating_on_conflict(
            connection, duration_rollups, ROLLUP_COLUMNS, rows, conflict=["key"], assignments=assignments
        )
    # Only a change that counts nothing in, or counts out, can leave a row at zero.
    emptied = [text for text, _, tally in ordered if tally.count <= 0]
    for start in range(0, len(emptied), CHUNK):
        connection.execute(
            delete(duration_rollups).where(
                duration_rollups.c.key.in_(emptied[start : start + CHUNK]), duration_rollups.c["count"] <= 0
            )
        )


def class_tallies(
    connection: Connection,
    grain: Grain,
    since: Micros | None = None,
    *,
    job_class: str | None = None,
    queue: str | None = None,
    origin: DurationOrigin | None = None,
) -> dict[ClassOrigin, Tally]:
    """Per class and origin, the tally of the periods of ``grain`` from ``since`` on, summed over
    the class's queues (over ``queue`` alone when given).

    For ``Grain.ALL``, each maximum is the longest of the class's days: the ``all`` row's own
    keeps a deleted job's duration, a day row goes with its day's jobs.
    """
    conditions = _of(grain, job_class, queue, origin)
    if since is not None:
        conditions.append(duration_rollups.c.start >= since)
    query = select(
        duration_rollups.c.job_class,
        duration_rollups.c.origin,
        duration_rollups.c["count"],
        duration_rollups.c.total_micros,
        duration_rollups.c.max_micros,
        duration_rollups.c.histogram,
    ).where(*conditions)
    found: dict[ClassOrigin, Tally] = {}
    for name, origin_text, count, total, longest, histogram in connection.execute(query):
        key = (name, DurationOrigin(origin_text))
        tally = Tally(count, total, longest, histogram_of(histogram))
        found[key] = found[key].plus(tally) if key in found else tally
    if grain is Grain.ALL and found:
        for key, longest in _longest_per_day(connection, job_class, queue, origin).items():
            if key in found:
                found[key].longest = longest
    return found


def _longest_per_day(
    connection: Connection, job_class: str | None, queue: str | None, origin: DurationOrigin | None
) -> dict[ClassOrigin, Micros]:
    query = (
        select(
            duration_rollups.c.job_class, duration_rollups.c.origin, func.max(duration_rollups.c.max_micros)
        )
        .where(*_of(Grain.DAY, job_class, queue, origin))
        .group_by(duration_rollups.c.job_class, duration_rollups.c.origin)
    )
    return {
        (name, DurationOrigin(origin_text)): longest
        for name, origin_text, longest in connection.execute(query)
    }


def _of(
    grain: Grain, job_class: str | None, queue: str | None, origin: DurationOrigin | None
) -> list[ColumnElement[bool]]:
    """The conditions for the rows of ``grain``, of one class, one queue and one origin when given."""
    conditions = [duration_rollups.c.grain == grain.value]
    if job_class is not None:
        conditions.append(duration_rollups.c.job_class == job_class)
    if queue is not None:
        conditions.append(duration_rollups.c.queue == queue)
    if origin is not None:
        conditions.append(duration_rollups.c.origin == origin.value)
    return conditions


def histogram_text(histogram: Histogram) -> str:
    """A histogram as its row stores it: JSON of ``{bucket: count}``, buckets in order, empty
    buckets left out."""
    return orjson.dumps({str(bucket): n for bucket, n in sorted(histogram.items()) if n}).decode()


def rollup_summary(
    connection: Connection,
    grain: Grain,
    origin: DurationOrigin,
    job_class: str | None = None,
    queue: str | None = None,
) -> DurationSummary:
    """The estimated summary of the durations from ``origin`` held by the roll-ups of ``grain``
    (``ALL``: the kept jobs, ``PRUNED``: those retention deleted), of one class, one queue, both
    or all."""
    tallies = class_tallies(connection, grain, job_class=job_class, queue=queue, origin=origin)
    return summed(tallies.values()).summary()


def kept_count(
    connection: Connection, origin: DurationOrigin, job_class: str | None = None, queue: str | None = None
) -> int:
    """How many kept jobs the roll-ups count a duration from ``origin`` of (of one class, one
    queue, both or all): the complete jobs whose ``origin`` time is known, as stored now (the
    writer and retention change the roll-ups in the transactions that change the jobs)."""
    total = select(func.coalesce(func.sum(duration_rollups.c["count"]), 0)).where(
        *_of(Grain.ALL, job_class, queue, origin)
    )
    return int(connection.execute(total).scalar_one())


def histogram_of(stored: str) -> Histogram:
    """A histogram from its stored text (``histogram_text``)."""
    return {int(bucket): count for bucket, count in orjson.loads(stored).items()}
