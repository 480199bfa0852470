"""``/sidekiq/busy``: the live processes with Quiet and Stop, and the jobs their threads run now."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from sidekiq_supervisor.services.sidekiq_monitor import (
    MAX_PAGE_SIZE,
    Page,
    ProcessInfo,
    SignalOutcome,
    Stats,
    Work,
)
from sidekiq_supervisor.web.monitor.deps import MonitorDep, MonitorRoute, known_jids
from sidekiq_supervisor.web.monitor.rendering import PREFIX, done, render, url
from sidekiq_supervisor.web.pages.templating import template_vars
from sidekiq_supervisor.web.security import read_form, require_csrf

router = APIRouter(prefix=PREFIX, route_class=MonitorRoute)

PageNumber = Annotated[int, Query(ge=1, le=1_000_000)]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
# Sidekiq 8's ``?only=``: one of the page's two tables, for a big cluster.
Only = Annotated[str, Query(pattern="^(jobs|processes)$")]
WORK_PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class BusyPage:
    """What the Busy page reads from Redis: the figures, the processes, a page of running jobs."""

    stats: Stats
    processes: tuple[ProcessInfo, ...]
    work: Page[Work]


@router.get("/busy", response_class=HTMLResponse)
async def busy(
    request: Request,
    monitor: MonitorDep,
    page: PageNumber = 1,
    count: PageSize = WORK_PAGE_SIZE,
    only: Only | None = None,
) -> HTMLResponse:
    """The Busy page: the processes and the jobs running now (``only=`` one of them)."""

    def gather() -> BusyPage:
        return BusyPage(stats=monitor.stats(), processes=monitor.processes(), work=monitor.work(page, count))

    view = await run_in_threadpool(gather)
    processes = view.processes
    known = await known_jids(request, (w.job.jid for w in view.work.items))
    totals = {
        "threads": sum(p.concurrency for p in processes),
        "busy": sum(p.busy for p in processes),
        "rss": sum(p.rss_kb or 0 for p in processes),
    }
    shows = {"processes": only != "jobs", "jobs": only != "processes"}
    return render(
        request, "busy.html", refresh=5, known=known, totals=totals, shows=shows, **template_vars(view)
    )


@router.post("/busy", dependencies=[Depends(require_csrf)])
async def signal(request: Request, monitor: MonitorDep) -> RedirectResponse:
    """Quiet or stop one process (``identity``), or all of them (``quiet_all``, ``stop_all``).

    Sidekiq's form names the signal by its button (``quiet`` or ``stop``), for ``identity`` or,
    without one, for every process; that works here too."""
    form = await read_form(request)
    action = form.get("action", [""])[0]
    identity = form.get("identity", [""])[0]
    if not action:
        pressed = next((name for name in ("quiet", "stop") if name in form), "")
        action = pressed if identity or not pressed else f"{pressed}_all"
    back = url(request, "/busy")
    if action in ("quiet_all", "stop_all"):
        sent = await run_in_threadpool(monitor.quiet_all if action == "quiet_all" else monitor.stop_all)
        return done(request, back, action.removesuffix("_all"), sent)
    if action in ("quiet", "stop") and identity:
        send = monitor.quiet if action == "quiet" else monitor.stop
        outcome = await run_in_threadpool(send, identity)
        return done(request, back, action, int(outcome is SignalOutcome.SENT))
    return done(request, back, "none")
