"""The duration roll-ups counted afresh from the jobs table, and their rows as each revision of
``duration_rollups`` stores them: what the migrations that build the table (0009, per class) and
rebuild it (0012, per class and queue) write for the jobs a ledger already holds.

The migrations read the jobs through a table of their own naming (not ``store.schema``, which
follows head), in id order, a chunk at a time.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy import Connection

from sidekiq_supervisor.domain import rollups
from sidekiq_supervisor.domain.durations import DurationOrigin
from sidekiq_supervisor.domain.model import Timeline
from sidekiq_supervisor.domain.rollups import UNKNOWN_QUEUE, Grain, RollupKey, Tally
from sidekiq_supervisor.store.rollups import histogram_of, histogram_text

# Completed jobs read at once: 20,000 rows are a few MB.
CHUNK = 20_000

_jobs = sa.table(
    "jobs",
    sa.column("id"),
    sa.column("job_class"),
    sa.column("queue"),
    sa.column("status"),
    sa.column("queued_at"),
    sa.column("started_at"),
    sa.column("completed_at"),
)

TIMELINE = (_jobs.c.queued_at, _jobs.c.started_at, _jobs.c.completed_at)


def count_kept_jobs(connection: Connection, *, by_queue: bool) -> dict[RollupKey, Tally]:
    """Every completed job's contributions (``domain.rollups``), per class and queue, or per class
    alone (every job under ``UNKNOWN_QUEUE``) when not ``by_queue``."""
    queue = _jobs.c.queue if by_queue else sa.literal(UNKNOWN_QUEUE)
    columns = (_jobs.c.id, _jobs.c.job_class, queue.label("queue"), *TIMELINE)
    tallies: dict[RollupKey, Tally] = {}
    after = 0
    while True:
        rows = connection.execute(
            sa.select(*columns)
            .where(_jobs.c.status == "complete", _jobs.c.id > after)
            .order_by(_jobs.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            return tallies
        after = rows[-1].id
        found = rollups.changes(
            (r.job_class, r.queue, None, Timeline(r.queued_at, r.started_at, r.completed_at)) for r in rows
        )
        added(tallies, found.items())


def added(tallies: dict[RollupKey, Tally], more: Iterable[tuple[RollupKey, Tally]]) -> dict[RollupKey, Tally]:
    """``tallies`` with each of ``more`` added to its key's (in place; returned for convenience)."""
    for key, tally in more:
        tallies[key] = tallies[key].plus(tally) if key in tallies else tally
    return tallies


def per_class(tallies: Iterable[tuple[RollupKey, Tally]]) -> dict[RollupKey, Tally]:
    """The tallies folded over queues: one per grain, period, class and origin, under
    ``UNKNOWN_QUEUE`` (counts, sums and histograms add up, the maximum is the longest)."""
    return added({}, ((key._replace(queue=UNKNOWN_QUEUE), tally) for key, tally in tallies))


def pruned_key(job_class: str, origin: str) -> RollupKey:
    """The key of the pruned jobs of ``job_class`` whose queue is not known."""
    return RollupKey(Grain.PRUNED, 0, job_class, UNKNOWN_QUEUE, DurationOrigin(origin))


def tally_of(count: int, total: int, longest: int, histogram: str) -> Tally:
    """A tally from a stored row's figures (the histogram as its JSON text)."""
    return Tally(count, total, longest, histogram_of(histogram))


def rollup_row(key: RollupKey, tally: Tally, *, by_queue: bool) -> dict[str, object]:
    """The row of ``key`` in ``duration_rollups``: per class and queue (0012 on), or per class,
    keyed by grain, start, origin and class (0009 to 0011)."""
    row: dict[str, object] = {
        "key": key.text if by_queue else f"{key.grain.value}|{key.start}|{key.origin.value}|{key.job_class}",
        "grain": key.grain.value,
        "start": key.start,
        "job_class": key.job_class,
        "origin": key.origin.value,
        "count": tally.count,
        "total_micros": tally.total,
        "max_micros": tally.longest,
        "histogram": histogram_text(tally.histogram),
    }
    if by_queue:
        row["queue"] = key.queue
    return row
