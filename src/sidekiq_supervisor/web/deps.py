"""What routes receive from the running app: everything the lifespan built for each Sidekiq app,
one ``Services`` per app, and the app a request is for (``web.app_prefix`` finds it)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

import redis
from fastapi import Depends, Request
from sqlalchemy import Engine
from starlette.types import Scope

from sidekiq_supervisor.services.alerting import Alerter
from sidekiq_supervisor.services.app_overview import AppsOverview
from sidekiq_supervisor.services.dashboard import Dashboard
from sidekiq_supervisor.services.job_manager import JobManager
from sidekiq_supervisor.services.ledger import Ledger
from sidekiq_supervisor.services.prometheus.exposition import Exporter, Exposition
from sidekiq_supervisor.services.recovery import Recoverer
from sidekiq_supervisor.services.report_intake import ReportIntake
from sidekiq_supervisor.services.report_writer import GroupCommitWriter
from sidekiq_supervisor.services.sidekiq_monitor import SidekiqMonitor
from sidekiq_supervisor.settings import Settings

# Where a request's scope carries the Services of the app it is for, and whether its URL named
# that app (/apps/NAME/...) rather than reaching the default app unprefixed.
APP_SCOPE_KEY = "sidekiq_supervisor.app"
PREFIXED_SCOPE_KEY = "sidekiq_supervisor.prefixed"


@dataclass(frozen=True, slots=True)
class Services:
    """Everything built for one Sidekiq app at start-up and closed at shutdown."""

    # The app's name (``default`` without a configuration file).
    name: str
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


@dataclass(frozen=True, slots=True)
class RunningApps:
    """Every app's Services, by name, in the configuration's order; the first is the default."""

    by_name: dict[str, Services]
    # GET /metrics' answers, for one app or all.
    exposition: Exposition
    # The overview of apps (/apps, GET /api/v1/apps): it remembers the Redis reads under way.
    overview: AppsOverview

    @property
    def default(self) -> Services:
        """The default app's (the unprefixed URLs')."""
        return next(iter(self.by_name.values()))

    def get(self, name: str) -> Services | None:
        """The app called ``name``, or None."""
        return self.by_name.get(name)

    @property
    def names(self) -> tuple[str, ...]:
        """The apps' names, default first."""
        return tuple(self.by_name)

    def __iter__(self) -> Iterator[Services]:
        return iter(self.by_name.values())

    def __len__(self) -> int:
        return len(self.by_name)


def services_of(scope: Scope) -> Services:
    """The Services of the app a request is for: the one its ``/apps/NAME`` prefix names, else
    the default app's."""
    services: Services | None = scope.get(APP_SCOPE_KEY)
    return services if services is not None else running_apps(scope).default


def named_app(scope: Scope) -> Services | None:
    """The app a request's ``/apps/NAME`` prefix names; None for an unprefixed URL."""
    return scope.get(APP_SCOPE_KEY) if scope.get(PREFIXED_SCOPE_KEY) else None


def running_apps(scope: Scope) -> RunningApps:
    """Every app of the running service (set by the lifespan)."""
    apps: RunningApps = scope["app"].state.apps
    return apps


async def _services(request: Request) -> Services:
    return services_of(request.scope)


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
