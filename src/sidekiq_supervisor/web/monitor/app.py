"""The monitor as an ASGI app of its own: the ``/sidekiq`` routes, the static files, the security."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from sidekiq_supervisor import __version__
from sidekiq_supervisor.services.sidekiq_monitor import SidekiqMonitor
from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.web.monitor.rendering import url
from sidekiq_supervisor.web.pages import STATIC
from sidekiq_supervisor.web.security import PageSecurity


async def _home(request: Request) -> RedirectResponse:
    """The app's root: its only page, ``/sidekiq`` (under the root path)."""
    return RedirectResponse(url(request))


def create_monitor_app(settings: Settings | None = None, *, ledger_engine: Engine | None = None) -> FastAPI:
    """The ``/sidekiq`` pages alone, with basic auth, CSRF and the CSP of the dashboard.

    With ``ledger_engine``, jobs the supervisor's ledger knows link to ``/jobs/{jid}`` (pages
    another app serves); without, no ledger is read.
    """
    from sidekiq_supervisor.web.monitor import router  # the package imports this module

    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            app.state.sidekiq_monitor.close()

    app = FastAPI(title="sidekiq-supervisor: Sidekiq monitor", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)  # fmt: skip
    # Built here, once (a Redis client connects on first use): the routes read these two.
    app.state.sidekiq_monitor = SidekiqMonitor.from_settings(settings)
    app.state.ledger_engine = ledger_engine
    app.include_router(router)
    app.add_api_route("/", _home, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(PageSecurity, settings=settings)
    return app
