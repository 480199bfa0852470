"""What routes receive from the running app: the writer, the ledger, the JobManager, settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from sidekiq_supervisor.services.ingest import GroupCommitWriter
from sidekiq_supervisor.services.job_manager import JobManager
from sidekiq_supervisor.services.job_payloads import PayloadSeal
from sidekiq_supervisor.services.ledger import Ledger
from sidekiq_supervisor.settings import Settings


@dataclass(frozen=True, slots=True)
class Services:
    """Everything the app builds at start-up and closes at shutdown."""

    settings: Settings
    engine: Engine
    writer: GroupCommitWriter
    manager: JobManager
    # Derived from the settings once, at start-up, rather than on every ingest request:
    api_tokens: tuple[str, ...]
    redaction_words: tuple[str, ...]
    payload_seal: PayloadSeal
    # The pydantic validation context that carries the configured limits to the validators.
    validation_limits: dict[str, int]


async def _services(request: Request) -> Services:
    return request.app.state.services


async def _writer(request: Request) -> GroupCommitWriter:
    return request.app.state.services.writer


async def _manager(request: Request) -> JobManager:
    return request.app.state.services.manager


async def _ledger(request: Request) -> Ledger:
    return request.app.state.services.manager.ledger


ServicesDep = Annotated[Services, Depends(_services)]
WriterDep = Annotated[GroupCommitWriter, Depends(_writer)]
ManagerDep = Annotated[JobManager, Depends(_manager)]
LedgerDep = Annotated[Ledger, Depends(_ledger)]
