"""The report use case: what a client sent, once validated, becomes the ledger's ``Report``.

Every way in (the seed's three routes, their fast path, the gem's batches) calls this one place,
so the rules hold alike: secrets masked or sealed (``job_payloads.job_content``), the event's time
the client's own ``at`` when it sent one, the worker kept on ``started`` only and the error on
``failed`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sidekiq_supervisor.domain.model import EventKind, Micros, Report, micros_from_seconds
from sidekiq_supervisor.services.job_payloads import PayloadSeal, job_content


class AsJson(Protocol):
    """A validated nested part of a report (worker, error), which the ledger keeps as JSON text."""

    def model_dump_json(self, *, exclude_none: bool = ..., by_alias: bool | None = ...) -> str:
        """Its JSON text."""
        ...


class ReportFields(Protocol):
    """What a validated report carries (the HTTP layer's bodies have these fields)."""

    @property
    def job_class(self) -> str:
        """The job class as sent."""
        ...

    @property
    def queue(self) -> str:
        """The queue."""
        ...

    @property
    def arguments(self) -> str:
        """The arguments' canonical JSON text."""
        ...

    @property
    def payload(self) -> Mapping[str, Any] | None:
        """The gem's job hash less args and per-run keys, if sent."""
        ...

    @property
    def at(self) -> float | None:
        """The client's time of the event, epoch seconds."""
        ...

    @property
    def worker(self) -> AsJson | None:
        """Who runs the job (on ``started``)."""
        ...

    @property
    def error(self) -> AsJson | None:
        """What the run raised (on ``failed``)."""
        ...


@dataclass(frozen=True, slots=True)
class ReportIntake:
    """Turns validated reports into domain reports, with the configured redaction and seal."""

    redaction_words: tuple[str, ...]
    seal: PayloadSeal

    def report(self, fields: ReportFields, kind: EventKind, jid: str, received: Micros) -> Report:
        """The domain report of ``fields`` about job ``jid``; ``received`` is when it arrived."""
        worker = fields.worker if kind is EventKind.STARTED else None
        error = fields.error if kind is EventKind.FAILED else None
        content = job_content(
            fields.job_class, fields.arguments, fields.payload, self.redaction_words, self.seal
        )
        return Report(
            jid,
            kind,
            received if fields.at is None else micros_from_seconds(fields.at),
            content.job_class,
            fields.queue,
            content.arguments,
            worker=None if worker is None else worker.model_dump_json(exclude_none=True),
            error=None if error is None else error.model_dump_json(by_alias=True),
            payload_form=content.payload_form,
            payload=content.payload,
        )
