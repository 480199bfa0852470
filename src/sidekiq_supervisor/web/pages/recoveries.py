"""``/recoveries``: what automatic recovery did, and how its loop is doing."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from sidekiq_supervisor.domain.recovery import COUNTED_HOURS
from sidekiq_supervisor.web.deps import ServicesDep
from sidekiq_supervisor.web.pages.templating import render

router = APIRouter()

# A page a person reads: the newest recoveries and quarantines.
SHOWN = 100


@router.get("/recoveries", response_class=HTMLResponse)
async def recoveries(request: Request, services: ServicesDep) -> HTMLResponse:
    """The Recoveries page."""
    done = await run_in_threadpool(services.manager.recoveries, None, SHOWN)
    classes = await run_in_threadpool(services.manager.recoveries_per_class, COUNTED_HOURS)
    return render(
        request, "recoveries.html", refresh=15, recoveries=done, health=services.recoverer.health,
        settings=services.settings, shown=SHOWN, per_class=classes, hours=COUNTED_HOURS,
    )  # fmt: skip
