"""What the ``/sidekiq`` routes receive, and the route class that turns a Redis outage into a page.

The monitor is built once per app, on first use, from the settings the app runs with: the main
app's services when the routes are included there, the monitor app's own settings when it runs
alone. A test may put a ready monitor (on a fixed clock, say) in ``app.state.sidekiq_monitor``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from sidekiq_supervisor.services.ledger import Ledger
from sidekiq_supervisor.services.sidekiq_monitor import SidekiqMonitor, SidekiqUnavailable
from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.web.monitor.rendering import unavailable

# Rows of a page are at most a few hundred; one IN list of them is one query.
MAX_LOOKUP = 1000


def monitor_settings(request: Request) -> Settings:
    """The settings of the app serving this request (the main app's, or the monitor app's own)."""
    state = request.app.state
    services = getattr(state, "services", None)
    return services.settings if services is not None else state.monitor_settings


async def _monitor(request: Request) -> SidekiqMonitor:
    state = request.app.state
    monitor = getattr(state, "sidekiq_monitor", None)
    if monitor is None:
        monitor = state.sidekiq_monitor = SidekiqMonitor.from_settings(monitor_settings(request))
    return monitor


MonitorDep = Annotated[SidekiqMonitor, Depends(_monitor)]


def _ledger_engine(request: Request) -> Engine | None:
    services = getattr(request.app.state, "services", None)
    if services is not None:
        return services.engine
    return getattr(request.app.state, "ledger_engine", None)


async def known_jids(request: Request, jids: Iterable[str | None]) -> frozenset[str]:
    """Which of ``jids`` the supervisor's ledger knows (a job row, or a restarted job's history),
    in one query for the whole page; empty when the app has no ledger."""
    engine = _ledger_engine(request)
    if engine is None:
        return frozenset()
    wanted = sorted({jid for jid in jids if jid})[:MAX_LOOKUP]
    return await run_in_threadpool(Ledger(engine).known_jids, wanted)


class MonitorRoute(APIRoute):
    """A route whose ``SidekiqUnavailable`` (Redis down, not configured) becomes a clear 503 page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The default handler, wrapped."""
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except SidekiqUnavailable as exc:
                return unavailable(request, exc)

        return handle
