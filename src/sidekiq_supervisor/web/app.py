"""The application factory: build everything at start-up from settings, close it at shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI, Response
from fastapi.staticfiles import StaticFiles
from fastapi.telemetry import TelemetryConfig
from fastapi_offline import FastAPIOffline
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from sidekiq_supervisor import __version__
from sidekiq_supervisor.apps import AppConfig, Apps, load_apps
from sidekiq_supervisor.services.alerting import Alerter
from sidekiq_supervisor.services.app_ledgers import open_app_ledger
from sidekiq_supervisor.services.app_overview import DEADLINE_SECONDS as OVERVIEW_DEADLINE_SECONDS
from sidekiq_supervisor.services.app_overview import AppsOverview
from sidekiq_supervisor.services.dashboard import Dashboard
from sidekiq_supervisor.services.garbage import settle_garbage_collector
from sidekiq_supervisor.services.job_manager import JobManager
from sidekiq_supervisor.services.job_payloads import PayloadSeal
from sidekiq_supervisor.services.outage_log import OutageLog
from sidekiq_supervisor.services.prometheus import multiprocess
from sidekiq_supervisor.services.prometheus.exposition import Exporter, Exposition
from sidekiq_supervisor.services.prometheus.instruments import ClassLabels, InstrumentFamilies, Instruments
from sidekiq_supervisor.services.prometheus.ledger_figures import (
    LedgerFiguresCache,
    read_ledger_figures,
    read_recent_classes,
)
from sidekiq_supervisor.services.recovery import Recoverer
from sidekiq_supervisor.services.report_intake import ReportIntake
from sidekiq_supervisor.services.report_writer import GroupCommitWriter, WriterHealth
from sidekiq_supervisor.services.retention import Pruner
from sidekiq_supervisor.services.sidekiq_monitor import SidekiqMonitor
from sidekiq_supervisor.services.writer_process import ProcessWriter
from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.sidekiq_redis import connection
from sidekiq_supervisor.web.api import apps as apps_api
from sidekiq_supervisor.web.api import ingest, jobs
from sidekiq_supervisor.web.api.openapi_errors import (
    HEALTH_RESPONSES,
    declare_security,
    drop_undeclared_validation_errors,
)
from sidekiq_supervisor.web.api.presenters import json_response
from sidekiq_supervisor.web.api.report_fast_path import ReportFastPath
from sidekiq_supervisor.web.api.schemas import EventIn, EventsIn, JobQueuedIn, JobReportIn
from sidekiq_supervisor.web.app_prefix import AppPrefix
from sidekiq_supervisor.web.body_guard import BodyGuard
from sidekiq_supervisor.web.deadline import RequestDeadline
from sidekiq_supervisor.web.deps import RunningApps, Services, ServicesDep
from sidekiq_supervisor.web.errors import install_error_handlers, retry_later
from sidekiq_supervisor.web.monitor import router as monitor_router
from sidekiq_supervisor.web.pages import STATIC
from sidekiq_supervisor.web.pages import apps as apps_page
from sidekiq_supervisor.web.pages import router as pages_router
from sidekiq_supervisor.web.prometheus import router as prometheus_router
from sidekiq_supervisor.web.security import PageSecurity

logger = logging.getLogger(__name__)

DOCUMENTED_BODIES = (JobQueuedIn, JobReportIn, EventIn, EventsIn)
# /healthz's read. PostgreSQL also says whether it takes writes: a hot standby, or a session or
# database made read-only, refuses every report.
READ_ONLY_QUERY = {
    "postgresql": "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'",
    # Always false, but it reads the file (``SELECT 1`` would not touch it): SQLite has no
    # read-only state to ask for, and a held write lock shows in the writer's health instead.
    "sqlite": "SELECT count(*) < 0 FROM sqlite_master",
}
# Under /docs, which is not a page (no basic auth, no CSP: Swagger UI runs an inline script).
DOCS_ASSETS = "/docs/assets"


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new app; nothing is opened until its lifespan starts."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        multiprocess.worker_started()
        apps = await run_in_threadpool(_open_apps, settings)
        for services in apps:
            await services.writer.start()
        app.state.apps = apps
        settle_garbage_collector()
        loops = [loop for services in apps for loop in _start_loops(services)]
        try:
            yield
        finally:
            # Each pass under way finishes: a delivery is bounded in time, each push is claimed
            # then recorded, a prune ends after its current batch.
            for stop, task in reversed(loops):
                stop()
                await task
            for services in apps:
                await services.writer.stop()
            await apps.exposition.close()
            for services in apps:
                services.close()
            multiprocess.worker_stopping()

    app = FastAPIOffline(
        title="sidekiq-supervisor",
        version=__version__,
        summary="A durable ledger of Sidekiq jobs: what is queued, running, done, and how long it took.",
        lifespan=lifespan,
        telemetry=_telemetry(settings),
        # /docs and /redoc from the assets fastapi-offline ships, not a CDN: they work offline.
        static_url=DOCS_ASSETS,
    )
    install_error_handlers(app)
    app.include_router(ingest.router)
    app.include_router(jobs.router)
    app.include_router(apps_api.router)
    app.add_api_route("/healthz", healthz, methods=["GET"], tags=["health"], responses=HEALTH_RESPONSES)
    app.include_router(prometheus_router)
    # The dashboard: pages for people, behind basic auth, CSRF checks and a strict CSP.
    app.include_router(pages_router)
    app.include_router(apps_page.router)
    # /sidekiq: Sidekiq's own Web UI pages over its Redis (also servable alone: web.monitor).
    app.include_router(monitor_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # Every body bounded in bytes and in time.
    app.add_middleware(
        BodyGuard, max_bytes=settings.max_body_bytes, timeout_seconds=settings.body_timeout_seconds
    )
    app.add_middleware(PageSecurity, settings=settings)
    app.add_middleware(RequestDeadline, seconds=settings.request_timeout_seconds)
    # /apps/NAME/... is the app NAME's, the rest the default app's.
    app.add_middleware(AppPrefix)
    # Outermost of ours: the seed's reports skip every other layer (it finds their app and bounds
    # their bodies' time itself; the writer keeps their deadline); what it does not answer goes on.
    app.add_middleware(ReportFastPath, body_timeout_seconds=settings.body_timeout_seconds)
    _document_bodies(app)
    return app


def _telemetry(settings: Settings) -> TelemetryConfig:
    enabled = settings.opentelemetry
    return {"tracing": enabled, "metrics": enabled, "logs": enabled}


def _open_apps(settings: Settings) -> RunningApps:
    """Every app's Services, built once (``Services.close`` releases each). A bad configuration
    file or a ledger of another app stops the start with one line."""
    configured = load_apps(settings)
    registry = CollectorRegistry()
    families = InstrumentFamilies(registry)
    opened: dict[str, Services] = {}
    try:
        for app in configured:
            opened[app.name] = _open_services(app, configured, families)
    except BaseException:
        for services in opened.values():
            services.close()
        raise
    exporters = [services.exporter for services in opened.values()]
    exposition = Exposition(multiprocess.process_collector(registry), exporters)
    # Half the request deadline at most: the overview answers before the service gives up on it.
    overview = AppsOverview(
        deadline_seconds=min(OVERVIEW_DEADLINE_SECONDS, settings.request_timeout_seconds / 2)
    )
    return RunningApps(opened, exposition, overview)


def _open_services(app: AppConfig, configured: Apps, families: InstrumentFamilies) -> Services:
    """One app's: its ledger (migrated and claimed), its Sidekiq Redis client, and the services
    on them, counting in ``families`` under its name."""
    settings = app.settings
    engine = open_app_ledger(configured, app, migrate=True)
    client = connection.connect(settings.redis_url)
    classes = ClassLabels(settings.metrics_max_classes)
    classes.update(read_recent_classes(engine))
    instruments = families.for_app(app.name, classes)
    writer = _writer(engine, settings, instruments)
    manager = JobManager.on(engine, client, settings)
    monitor = SidekiqMonitor(client, sidekiq_version=settings.sidekiq_version)
    ledger_figures = LedgerFiguresCache(
        partial(read_ledger_figures, engine, manager.liveness),
        max_age=settings.metrics_cache_seconds,
        hung_after=settings.request_timeout_seconds,
        on_read=lambda figures: classes.update(figures.recent_classes),
    )
    exporter = Exporter(
        app.name,
        ledger_figures,
        monitor,
        redis_configured=client is not None,
        stuck_after_seconds=settings.uncompleted_alert_minutes * 60,
    )
    return Services(
        app.name,
        settings,
        engine,
        client,
        writer,
        manager,
        Dashboard(manager),
        monitor,
        Recoverer.from_settings(manager, engine, settings, instruments),
        # With several apps, each alert message names its app.
        Alerter.from_settings(manager, settings, app=app.name if len(configured) > 1 else None),
        exporter,
        api_tokens=app.api_tokens,
        intake=ReportIntake(settings.redaction_words, PayloadSeal(settings.secret_keys)),
        validation_limits={"max_arguments_bytes": settings.max_arguments_bytes},
    )


def _writer(engine: Engine, settings: Settings, instruments: Instruments) -> GroupCommitWriter:
    """The app's group-commit writer, its transactions where ``ingest_writer`` says."""
    make: Callable[..., GroupCommitWriter] = GroupCommitWriter
    if settings.ingest_writer == "process":
        make = partial(ProcessWriter, sqlite_synchronous=settings.sqlite_synchronous)
    return make(
        engine,
        batch_size=settings.ingest_batch_size,
        queue_limit=settings.ingest_queue_limit,
        deadline_seconds=settings.request_timeout_seconds,
        instruments=instruments,
    )


Loop = tuple[Callable[[], None], "asyncio.Task[None]"]


def _start_loops(services: Services) -> list[Loop]:
    """One app's background tasks, each with what stops it: the pruner always (its pass also
    creates the history's upcoming daily partitions on PostgreSQL and trims the chart's counts per
    minute), automatic recovery with SUPERVISOR_AUTO_RECOVER, the alert loop with
    SUPERVISOR_NOTIFY or SUPERVISOR_ALERTS."""
    settings, name = services.settings, services.name
    pruner = Pruner.from_settings(services.engine, settings)
    loops: list[Loop] = [
        (
            pruner.stop,
            asyncio.create_task(pruner.run(settings.prune_interval_seconds), name=f"retention {name}"),
        )
    ]
    if settings.auto_recover:
        recovering = services.recoverer.run(settings.recover_interval_seconds)
        loops.append((services.recoverer.stop, asyncio.create_task(recovering, name=f"recovery {name}")))
    if settings.alerts_enabled:
        alerting = services.alerter.run(settings.alert_interval_seconds)
        loops.append((services.alerter.stop, asyncio.create_task(alerting, name=f"alerts {name}")))
    return loops


async def healthz(services: ServicesDep) -> Response:
    """200 when a report could be stored right now; else 503 naming each check that failed.

    Load balancers poll it every few seconds, so it stays cheap and never contends with ingest:
    the writer's state is read from memory and the database answers one read. No write
    transaction is opened, so a write lock held elsewhere is seen through the writer, once a
    report has waited on it past the deadline.
    """
    writer = services.writer.health
    checks = {
        "database": await run_in_threadpool(_database_check, services.engine),
        "writer": _writer_check(writer),
        "writes": "ok",
    }
    if writer.overdue:
        timeout = services.settings.request_timeout_seconds
        checks["writes"] = f"locked out: the writer has not been able to commit within {timeout:g} s"
    body = {"status": "ok", "version": __version__, "checks": checks}
    failed = [f"{name} {verdict}" for name, verdict in checks.items() if verdict != "ok"]
    if not failed:
        return json_response(body)
    error = "reports cannot be stored now: " + "; ".join(failed)
    return retry_later({**body, "status": "unavailable", "error": error})


def _database_check(engine: Engine) -> str:
    """``ok``, ``unreachable`` or ``read-only``, by one read (on a worker thread)."""
    query = READ_ONLY_QUERY.get(engine.dialect.name, "SELECT 1 = 0")
    try:
        with engine.connect() as connection:
            read_only = bool(connection.execute(text(query)).scalar_one())
    except SQLAlchemyError as exc:
        _HEALTH_OUTAGE.failed(exc)
        return "unreachable"
    _HEALTH_OUTAGE.succeeded()
    return "read-only" if read_only else "ok"


# /healthz is polled every few seconds: one line when the database goes, one when it is back.
_HEALTH_OUTAGE = OutageLog(logger, "the database (health check)")


def _writer_check(writer: WriterHealth) -> str:
    if not writer.running:
        return "stopped"
    if writer.pending_reports >= writer.queue_limit:
        return f"queue full: {writer.pending_reports} reports waiting (limit {writer.queue_limit})"
    return "ok"


def _document_bodies(app: FastAPI) -> None:
    # The ingest routes parse their bodies by hand (form or JSON); publish their schemas anyway.
    # Each route declares its errors (web.api.openapi_errors): FastAPI's 422 only where one can occur.
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in DOCUMENTED_BODIES:
                model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(model_schema.pop("$defs", {}))
                components[model.__name__] = model_schema
            events = components["EventsIn"]["properties"]["events"]
            events["items"] = {"$ref": "#/components/schemas/EventIn"}
            drop_undeclared_validation_errors(schema)
            declare_security(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
