"""What routes receive from the running app: everything the lifespan built, in one ``Services``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import redis
from fastapi import Depends, Request
from sqlalchemy import Engine

from sidekiq_supervisor.services.alerting import Alerter
from sidekiq_supervisor.services.dashboard import Dashboard
from sidekiq_supervisor.services.job_manager import JobManager
from sidekiq_supervisor.services.ledger import Ledger
from sidekiq_supervisor.services.prometheus.exposition import Exporter
from sidekiq_supervisor.services.recovery import Recoverer
from sidekiq_supervisor.services.report_intake import ReportIntake
from sidekiq_supervisor.services.report_writer import GroupCommitWriter
from sidekiq_supervisor.services.sidekiq_monitor import SidekiqMonitor
from sidekiq_supervisor.settings import Settings


@dataclass(frozen=True, slots=True)
class Services:
    """Everything the app builds at start-up and closes at shutdown."""

    settings: Settings
    engine: Engine
    # Sidekiq's Redis, one client (one pool) for every service; None when REDIS_URL is empty.
    redis_client: redis.Redis | None
    writer: GroupCommitWriter
    manager: JobManager
    dashboard: Dashboard
    sidekiq_monitor: SidekiqMonitor
    recoverer: Recoverer
    alerter: Alerter
    # GET /metrics: this process's instruments and the figures read at scrape time.
    exporter: Exporter
    # Derived from the settings once, at start-up, rather than on every ingest request:
    api_tokens: tuple[str, ...]
    intake: ReportIntake
    # The pydantic validation context that carries the configured limits to the validators.
    validation_limits: dict[str, int]

    def close(self) -> None:
        """Release the Redis pool and the database's connections (the writer stops first)."""
        if self.redis_client is not None:
            self.redis_client.close()
        self.engine.dispose()


async def _services(request: Request) -> Services:
    services: Services = request.app.state.services  # set by the lifespan (web.app)
    return services


async def _writer(request: Request) -> GroupCommitWriter:
    return (await _services(request)).writer


async def _manager(request: Request) -> JobManager:
    return (await _services(request)).manager


async def _ledger(request: Request) -> Ledger:
    return (await _services(request)).manager.ledger


ServicesDep = Annotated[Services, Depends(_services)]
WriterDep = Annotated[GroupCommitWriter, Depends(_writer)]
ManagerDep = Annotated[JobManager, Depends(_manager)]
LedgerDep = Annotated[Ledger, Depends(_ledger)]
