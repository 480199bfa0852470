"""``/sidekiq``: the summary figures, a realtime graph, the daily history and the Redis server; and
the JSON that Sidekiq's Web UI serves beside it (``/stats``, ``/stats/queues``), in Sidekiq's shape,
since health checks and integrations read it (``.sidekiq.enqueued``)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from sidekiq_supervisor.services.sidekiq_monitor import DailyStat, RedisInfo, SidekiqMonitor, Stats
from sidekiq_supervisor.web.monitor.charts import history_chart, realtime_frame
from sidekiq_supervisor.web.monitor.deps import MonitorDep, MonitorRoute
from sidekiq_supervisor.web.monitor.rendering import PREFIX, render, url
from sidekiq_supervisor.web.pages.templating import template_vars

router = APIRouter(prefix=PREFIX, route_class=MonitorRoute)

# The history periods Sidekiq offers; any from 1 to 180 works, as in Sidekiq.
HISTORY_DAYS = (7, 30, 90, 180)
Days = Annotated[int, Query(ge=1, le=180)]
# The realtime poll intervals offered, in seconds; Sidekiq's default is 5.
POLL_SECONDS = (2, 5, 10, 20)


@dataclass(frozen=True, slots=True)
class DashboardPage:
    """What the dashboard reads from Redis: the figures, the daily history (today first) and its
    totals (processed, failed), and the Redis server."""

    stats: Stats
    history: tuple[DailyStat, ...]
    history_totals: tuple[int, int]
    redis: RedisInfo


@router.get("", response_class=HTMLResponse)
async def dashboard(request: Request, monitor: MonitorDep, days: Days = 30) -> HTMLResponse:
    """The dashboard page."""

    def gather() -> DashboardPage:
        history = monitor.history(days)
        return DashboardPage(
            stats=monitor.stats(),
            history=history,
            history_totals=(sum(d.processed for d in history), sum(d.failed for d in history)),
            redis=monitor.redis_info(),
        )

    view = await run_in_threadpool(gather)
    chart = history_chart(view.history)
    return render(
        request,
        "dashboard.html",
        days=days,
        choices=HISTORY_DAYS,
        poll_seconds=POLL_SECONDS,
        realtime=realtime_frame(),
        chart=chart,
        **template_vars(view),
    )


@router.head("", include_in_schema=False)
async def heartbeat(monitor: MonitorDep) -> Response:
    """Sidekiq's cheapest health check: 200 once Redis answers (503 while it does not)."""
    await run_in_threadpool(SidekiqMonitor.ping, monitor)
    return Response(headers={"Cache-Control": "no-store"})


@router.get("/stats", response_class=JSONResponse)
async def stats(monitor: MonitorDep) -> JSONResponse:
    """The summary figures and the Redis server, as Sidekiq's ``/stats`` has them; the realtime
    graph polls it."""

    def gather() -> dict[str, Any]:
        return stats_document(monitor.stats(), monitor.redis_info(), monitor.sidekiq_major())

    return JSONResponse(await run_in_threadpool(gather), headers={"Cache-Control": "no-store"})


@router.get("/stats/queues", response_class=JSONResponse)
async def queue_sizes(monitor: MonitorDep) -> JSONResponse:
    """Each queue's size, the largest first, as Sidekiq's ``/stats/queues``."""
    queues = await run_in_threadpool(SidekiqMonitor.queues, monitor)
    ordered = sorted(queues, key=lambda queue: (-queue.size, queue.name))
    return JSONResponse({queue.name: queue.size for queue in ordered}, headers={"Cache-Control": "no-store"})


@router.get("/dashboard/stats", include_in_schema=False)
async def dashboard_stats(request: Request) -> RedirectResponse:
    """An old address of ``/stats`` that Sidekiq still redirects."""
    return RedirectResponse(url(request, "/stats"), status_code=302)


def stats_document(figures: Stats, server: RedisInfo, sidekiq_major: int) -> dict[str, Any]:
    """Sidekiq's ``/stats`` JSON: ``sidekiq`` (the summary bar), ``redis`` (the keys its dashboard
    shows; Sidekiq 8 adds the store's name and version) and ``server_utc_time``."""
    redis_keys = {
        "redis_version": server.version,
        "uptime_in_days": str(server.uptime_days),
        "connected_clients": str(server.connected_clients),
        "used_memory_human": server.used_memory_human,
        "used_memory_peak_human": server.used_memory_peak_human,
    }
    if sidekiq_major >= 8:
        redis_keys.update(store_name=server.store_name, store_version=server.store_version)
    return {
        "sidekiq": asdict(figures),
        "redis": redis_keys,
        "server_utc_time": time.strftime("%H:%M:%S UTC", time.gmtime()),
    }
