"""What must hold in the ledger after any fault: every acknowledged report stored, and the store's
own invariants, checked straight in the database (not through the service under test).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import text

from sidekiq_supervisor.domain.model import EventKind, Timeline
from sidekiq_supervisor.domain.status import fold_events, status_of
from sidekiq_supervisor.store.engine import make_engine
from tests.reliability.load import Sent


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The ledger's two tables, read in one go."""

    jobs: list[tuple[str, str, int | None, int | None, int | None, int]]
    events: list[tuple[int, str, str, int, int]]

    def event_keys(self) -> set[tuple[str, str, int]]:
        """(jid, kind, at) of every stored event."""
        return {(jid, kind, at) for _, jid, kind, at, _ in self.events}


def read_ledger(database_url: str) -> Snapshot:
    """Both tables; ``jobs`` as (jid, status, queued_at, started_at, completed_at, attempts)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            jobs = connection.execute(
                text("SELECT jid, status, queued_at, started_at, completed_at, attempts FROM jobs")
            ).all()
            events = connection.execute(
                text("SELECT id, jid, kind, at, recorded_at FROM job_events ORDER BY id")
            ).all()
    finally:
        engine.dispose()
    return Snapshot([tuple(row) for row in jobs], [tuple(row) for row in events])  # type: ignore[misc]


def missing_reports(acknowledged: Iterable[Sent], snapshot: Snapshot) -> list[Sent]:
    """The acknowledged reports that are not in the store.

    A report with an event time is looked up exactly; one without (the service stamped its
    receive time, unknown to the client) by jid and kind.
    """
    keys = snapshot.event_keys()
    kinds = {(jid, kind) for jid, kind, _ in keys}

    def stored(sent: Sent) -> bool:
        if sent.at is None:
            return (sent.jid, sent.kind) in kinds
        return (sent.jid, sent.kind, sent.at) in keys

    return [sent for sent in acknowledged if not stored(sent)]


def invariant_violations(snapshot: Snapshot) -> list[str]:
    """Every broken store invariant, as readable lines (empty when all hold).

    - one row per jid;
    - every job has its history, and every history has its job (no half-written batch);
    - each job's times, attempts and status are exactly the fold of its history
      (``domain.status``), so its status agrees with the order of its times;
    - the single writer records events in commit order: ``recorded_at`` never goes back.
    """
    problems: list[str] = []
    rows: dict[str, list[tuple[str, int | None, int | None, int | None, int]]] = defaultdict(list)
    for jid, *rest in snapshot.jobs:
        rows[jid].append(tuple(rest))  # type: ignore[arg-type]
    problems += [f"{jid}: {len(found)} rows" for jid, found in rows.items() if len(found) > 1]

    history: dict[str, list[tuple[EventKind, int]]] = defaultdict(list)
    for _, jid, kind, at, _ in snapshot.events:
        history[jid].append((EventKind(kind), at))
    problems += [f"{jid}: a job row without any event" for jid in rows if jid not in history]
    for jid, events in history.items():
        restarted = any(kind is EventKind.RESTARTED for kind, _ in events)
        if jid not in rows and not restarted:
            problems.append(f"{jid}: events without a job row")

    for jid, found in rows.items():
        status, queued_at, started_at, completed_at, attempts = found[0]
        stored = Timeline(queued_at, started_at, completed_at, attempts)
        folded = fold_events(history.get(jid, []))
        if stored != folded:
            problems.append(f"{jid}: stored {stored} but its history folds to {folded}")
        if status != status_of(folded).value:
            problems.append(f"{jid}: status {status!r} but its history says {status_of(folded).value!r}")

    previous = None
    for event_id, jid, _, _, recorded_at in snapshot.events:
        if previous is not None and recorded_at < previous:
            problems.append(f"event {event_id} of {jid}: recorded_at goes back ({recorded_at} < {previous})")
        previous = recorded_at
    return problems
