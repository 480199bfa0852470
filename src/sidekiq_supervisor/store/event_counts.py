"""Reports per minute and kind, counted as the writer stores them (``event_counts``).

The overview's chart reads at most a day of minutes here instead of grouping millions of history
rows. Counts add up in the statement itself (``count = count + excluded.count``), so concurrent
writers on PostgreSQL never lose one.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from sqlalchemy import Connection, delete, select

from sidekiq_supervisor.domain.model import Micros
from sidekiq_supervisor.store.bulk import insert_adding_on_conflict
from sidekiq_supervisor.store.schema import event_counts

MINUTE: Micros = 60_000_000
# What the chart can ask for (a day), and then some.
KEPT_FOR: Micros = 8 * 24 * 60 * MINUTE
# Rows per statement, well inside both databases' bind-parameter limits.
CHUNK = 1000
COLUMNS = ["minute", "kind", "count"]


def count_events(connection: Connection, events: Iterable[tuple[str, Micros]]) -> None:
    """Add ``(kind, at)`` events to their minutes' counts, inside the caller's transaction."""
    counts = Counter((at // MINUTE * MINUTE, kind) for kind, at in events)
    if not counts:
        return
    # Sorted: concurrent writers take the rows' locks in one order.
    rows = [(minute, kind, count) for (minute, kind), count in sorted(counts.items())]
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        insert_adding_on_conflict(connection, event_counts, COLUMNS, chunk, conflict=["minute", "kind"])


def events_per_minute(connection: Connection, since: Micros, until: Micros) -> dict[str, dict[Micros, int]]:
    """For each kind, the number of events per minute (minute start, in micros) in [since, until)."""
    query = select(event_counts.c.minute, event_counts.c.kind, event_counts.c["count"]).where(
        event_counts.c.minute >= since, event_counts.c.minute < until
    )
    series: dict[str, dict[Micros, int]] = defaultdict(dict)
    for minute, kind, count in connection.execute(query):
        series[kind][minute] = count
    return dict(series)


def trim_event_counts(connection: Connection, now: Micros) -> int:
    """Delete the counts of minutes older than ``KEPT_FOR``; how many rows went."""
    result = connection.execute(delete(event_counts).where(event_counts.c.minute < now - KEPT_FOR))
    return result.rowcount or 0
