"""What the ``/sidekiq`` routes receive, and the route class that turns a Redis outage into a page.

In the main app, a request's Sidekiq app (``web.deps.services_of``) gives the monitor and the
ledger. The monitor app alone puts its monitor in ``app.state.sidekiq_monitor`` and its ledger (or
None) in ``app.state.ledger_engine`` at its creation; a test may put a ready monitor (on a fixed
clock, say) there.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from sidekiq_supervisor.services.ledger import Ledger
from sidekiq_supervisor.services.sidekiq_monitor import SidekiqMonitor, SidekiqUnavailable
from sidekiq_supervisor.web.deps import APP_SCOPE_KEY, Services
from sidekiq_supervisor.web.errors import retry_later
from sidekiq_supervisor.web.monitor.rendering import unavailable

# Rows of a page are at most a few hundred; one IN list of them is one query.
MAX_LOOKUP = 1000


async def _monitor(request: Request) -> SidekiqMonitor:
    services: Services | None = request.scope.get(APP_SCOPE_KEY)
    if services is not None:
        return services.sidekiq_monitor
    monitor: SidekiqMonitor = request.app.state.sidekiq_monitor  # Starlette's State holds Any
    return monitor


MonitorDep = Annotated[SidekiqMonitor, Depends(_monitor)]


async def known_jids(request: Request, jids: Iterable[str | None]) -> frozenset[str]:
    """Which of ``jids`` the supervisor's ledger knows (a job row, or a restarted job's history),
    in one query for the whole page; empty when the app has no ledger."""
    services: Services | None = request.scope.get(APP_SCOPE_KEY)
    engine: Engine | None = services.engine if services is not None else request.app.state.ledger_engine
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
                if self.response_class is JSONResponse:  # /stats and the like: JSON for scripts
                    return retry_later({"error": f"Sidekiq's Redis is unavailable: {exc}"})
                return unavailable(request, exc)

        return handle
