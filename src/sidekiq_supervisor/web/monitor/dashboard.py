"""``/sidekiq``: the summary figures, a realtime graph, the daily history and the Redis server."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from sidekiq_supervisor.services.monitor import SidekiqMonitor
from sidekiq_supervisor.web.monitor.charts import history_chart, realtime_frame
from sidekiq_supervisor.web.monitor.deps import MonitorDep, MonitorRoute
from sidekiq_supervisor.web.monitor.views import PREFIX, render

router = APIRouter(prefix=PREFIX, route_class=MonitorRoute)

# The history periods offered (Sidekiq offers 180 too; 90 keeps the chart legible); any up to 90 works.
HISTORY_DAYS = (7, 30, 90)
Days = Annotated[int, Query(ge=1, le=90)]
# The realtime poll intervals offered, in seconds; Sidekiq's default is 5.
POLL_SECONDS = (2, 5, 10, 20)


@router.get("", response_class=HTMLResponse)
async def dashboard(request: Request, monitor: MonitorDep, days: Days = 30) -> HTMLResponse:
    """The dashboard page."""

    def gather() -> dict[str, object]:
        history = monitor.history(days)
        return {
            "stats": monitor.stats(),
            "history": history,
            "history_totals": (sum(d.processed for d in history), sum(d.failed for d in history)),
            "redis": monitor.redis_info(),
        }

    data = await run_in_threadpool(gather)
    chart = history_chart(data["history"])  # type: ignore[arg-type]
    return render(
        request,
        "dashboard.html",
        days=days,
        choices=HISTORY_DAYS,
        poll_seconds=POLL_SECONDS,
        realtime=realtime_frame(),
        chart=chart,
        **data,
    )


@router.get("/stats")
async def stats(monitor: MonitorDep) -> JSONResponse:
    """The summary figures as JSON, which the realtime graph polls (like Sidekiq's ``/stats``)."""
    figures = await run_in_threadpool(SidekiqMonitor.stats, monitor)
    return JSONResponse(asdict(figures), headers={"Cache-Control": "no-store"})
