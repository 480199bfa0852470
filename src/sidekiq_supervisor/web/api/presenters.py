"""Ledger records as JSON documents. Arguments go out as the stored JSON text, never re-encoded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from fastapi import Response

from sidekiq_supervisor.domain.durations import DurationOrigin, DurationSummary, duration_of
from sidekiq_supervisor.domain.model import Micros, iso_from_micros
from sidekiq_supervisor.store.records import StoredEvent, StoredJob


def seconds(micros: Micros | None) -> float | None:
    """Microseconds as float seconds, or ``None``."""
    return None if micros is None else micros / 1_000_000


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def moment(micros: Micros | None) -> datetime | None:
    """Epoch microseconds as an aware UTC datetime, which orjson writes exactly as ``isoformat``
    (``iso_from_micros``) does, in a tenth of the time: every stored report's answer has three."""
    return None if micros is None else EPOCH + timedelta(microseconds=micros)


def job_document(job: StoredJob) -> dict[str, Any]:
    """A job as the API shows it (for ``orjson.dumps``: its times are datetimes)."""
    timeline = job.timeline
    return {
        "jid": job.jid,
        "job_class": job.job_class,
        "queue": job.queue,
        "arguments": orjson.Fragment(job.arguments),
        "status": job.status.value,
        "queued_at": moment(timeline.queued_at),
        "started_at": moment(timeline.started_at),
        "completed_at": moment(timeline.completed_at),
        "attempts": timeline.attempts,
        "restarted_from": job.restarted_from,
        "worker": None if job.worker is None else orjson.Fragment(job.worker),
        "queued_to_completion_seconds": seconds(_complete_duration(job, DurationOrigin.QUEUED)),
        "started_to_completion_seconds": seconds(_complete_duration(job, DurationOrigin.STARTED)),
    }


def _complete_duration(job: StoredJob, origin: DurationOrigin) -> Micros | None:
    return duration_of(job.timeline, origin) if job.status == "complete" else None


def restarted_document(jid: str) -> dict[str, Any]:
    """The answer to a report about a job that a restart replaced."""
    return {
        "jid": jid,
        "status": "restarted",
        "detail": "this job was restarted under a new jid; the report is kept in its history",
    }


def event_document(event: StoredEvent) -> dict[str, Any]:
    """One entry of a job's history."""
    return {
        "event": event.kind.value,
        "at": iso_from_micros(event.at),
        "recorded_at": iso_from_micros(event.recorded_at),
        "detail": None if event.detail is None else orjson.Fragment(event.detail),
    }


def summary_document(summary: DurationSummary) -> dict[str, Any]:
    """A duration summary in seconds, with ``"estimated": true`` when it comes from a sample and
    ``"percentiles_estimated": true`` when from roll-ups (count and mean exact)."""
    values = (summary.mean, summary.p50, summary.p95, summary.p99, summary.max)
    names = ("mean", "p50", "p95", "p99", "max")
    document: dict[str, Any] = {
        "count": summary.count,
        **{
            f"{name}_seconds": None if v is None else v.total_seconds()
            for name, v in zip(names, values, strict=True)
        },
    }
    # Only an estimate carries the key, so exact answers read as they always did.
    if summary.estimated:
        document["estimated"] = True
    if summary.percentiles_estimated:
        document["percentiles_estimated"] = True
    return document


def json_response(content: Any, status_code: int = 200) -> Response:
    """A JSON response serialised by orjson (which also emits the stored arguments verbatim)."""
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")
