"""The ledger side of a restart: claim the original (compare-and-set), then record its replacement.

A restart runs both in one transaction around the push to Sidekiq: claim, push, record, commit.
If the push fails, the transaction rolls back and the original stays as it was.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from sqlalchemy import delete, literal, select, update
from sqlalchemy.engine import Connection

from sidekiq_supervisor.domain.model import EventKind, JobStatus, Micros, Report
from sidekiq_supervisor.store.bulk import select_where_in
from sidekiq_supervisor.store.records import StoredJob
from sidekiq_supervisor.store.schema import job_events, job_payloads, jobs
from sidekiq_supervisor.store.writer import dialect_insert


def claim_original(connection: Connection, original: StoredJob) -> bool:
    """Delete ``original`` if it is still the uncompleted job that was read; whether it was.

    The delete only matches the row as it was read (still started, same start), so a job that
    completed meanwhile, started again, or that another restart already took, is left alone.
    The caller counts the job's leaving (``store.job_counts``) once the push is done.
    """
    deleted = connection.execute(
        delete(jobs).where(
            jobs.c.id == original.id,
            jobs.c.status == JobStatus.STARTED.value,
            jobs.c.started_at == original.timeline.started_at,
        )
    ).rowcount
    return deleted == 1


def kept_payload(connection: Connection, jid: str) -> tuple[str | None, str | None]:
    """The form and text of the payload kept for ``jid`` (``(None, None)`` when none was kept)."""
    row = connection.execute(
        select(job_payloads.c.form, job_payloads.c.payload).where(job_payloads.c.jid == jid)
    ).first()
    return (None, None) if row is None else (row.form, row.payload)


def kept_payloads(connection: Connection, jids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
    """:func:`kept_payload` of each of ``jids`` (a few dozen) in one query; a jid without one is absent."""
    # The writer's bulk read: SQLAlchemy's IN () built each batch's 50 bound values one by one.
    rows = select_where_in(connection, job_payloads, ["jid", "form", "payload"], "jid", jids)
    return {jid: (form, payload) for jid, form, payload in rows}


def record_replacement(
    connection: Connection,
    original: StoredJob,
    replacement: Report,
    recorded_at: Micros,
    recovered: str | None = None,
    attempt: int = 1,
) -> bool:
    """Record ``replacement`` as queued and linked to ``original``, whose history gets a ``restarted``
    event naming the new jid (the event also keeps late reports of the original from bringing its
    row back; see ``store.writer``). Whether the replacement is a new job.

    The replacement may already be known: a restart re-run after a crash reuses the jid it pushed
    the first time, which may have reported since. It is then only linked to the original.
    ``recovered`` is why automatic recovery pushed it (kept in the event), None for a restart asked for.
    """
    row = {
        "jid": replacement.jid,
        "job_class": replacement.job_class,
        "queue": replacement.queue,
        "arguments": replacement.arguments,
        "status": JobStatus.QUEUED.value,
        "queued_at": replacement.at,
        "attempts": 0,
        "restarted_from": original.jid,
    }
    _move_payload(connection, original.jid, replacement.jid)
    insert_job = dialect_insert(connection, jobs).values(row).on_conflict_do_nothing(index_elements=["jid"])
    created = connection.execute(insert_job.returning(jobs.c.id)).first() is not None
    if not created:
        link = update(jobs).where(jobs.c.jid == replacement.jid).values(restarted_from=original.jid)
        connection.execute(link)
    said: dict[str, object] = {"new_jid": replacement.jid}
    if recovered:
        said |= {"recovered": recovered, "attempt": attempt, **_recovered_job(original)}
    detail = orjson.dumps(said).decode()
    events = [(replacement.jid, EventKind.QUEUED, None), (original.jid, EventKind.RESTARTED, detail)]
    _append_events(connection, events, replacement.at, recorded_at)
    return created


def _append_events(
    connection: Connection, events: list[tuple[str, EventKind, str | None]], at: Micros, recorded_at: Micros
) -> None:
    """Add ``(jid, kind, detail)`` events at ``at`` to the history (a re-run adds nothing twice)."""
    connection.execute(
        dialect_insert(connection, job_events).on_conflict_do_nothing(index_elements=["jid", "kind", "at"]),
        [
            {"jid": jid, "kind": kind.value, "at": at, "recorded_at": recorded_at, "detail": detail}
            for jid, kind, detail in events
        ],
    )


def _move_payload(connection: Connection, original_jid: str, new_jid: str) -> None:
    """The copy is the same job: it takes the original's kept payload (its own, if it has one)."""
    kept = select(literal(new_jid), job_payloads.c.form, job_payloads.c.payload).where(
        job_payloads.c.jid == original_jid
    )
    copy = dialect_insert(connection, job_payloads).from_select(["jid", "form", "payload"], kept)
    connection.execute(copy.on_conflict_do_nothing(index_elements=["jid"]))
    connection.execute(delete(job_payloads).where(job_payloads.c.jid == original_jid))


def recovery_attempt(connection: Connection, job: StoredJob) -> int:
    """Which recovery of the chain original → copy → copy pushing ``job`` again would be (1 for
    the first): one more than the recovery that pushed ``job`` itself, if one did."""
    if job.restarted_from is None:
        return 1
    detail = connection.execute(
        select(job_events.c.detail).where(
            job_events.c.jid == job.restarted_from, job_events.c.kind == EventKind.RESTARTED.value
        )
    ).scalar()
    said = orjson.loads(detail) if detail else {}
    return int(said.get("attempt", 1)) + 1 if isinstance(said, dict) and "recovered" in said else 1


def record_quarantine(connection: Connection, original: StoredJob, reason: str, recorded_at: Micros) -> None:
    """The original's history says it went to Sidekiq's Dead set, and why (its row is claimed)."""
    detail = orjson.dumps({"reason": reason, **_recovered_job(original)}).decode()
    _append_events(connection, [(original.jid, EventKind.QUARANTINED, detail)], recorded_at, recorded_at)


def _recovered_job(original: StoredJob) -> dict[str, str]:
    """What a record of automatic recovery keeps of the job, so that it can be listed, counted per
    class and found by its arguments after the job's own rows are gone (restarted, pruned)."""
    return {"job_class": original.job_class, "queue": original.queue, "arguments": original.arguments}
