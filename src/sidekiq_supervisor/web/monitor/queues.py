"""``/sidekiq/queues``: each queue's size and latency, a page of one queue's jobs, delete and clear."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from sidekiq_supervisor.services.monitor import InvalidQueueName, QueueOrder
from sidekiq_supervisor.web.monitor.deps import MonitorDep, MonitorRoute, known_jids
from sidekiq_supervisor.web.monitor.views import PREFIX, done, member_of, render
from sidekiq_supervisor.web.security import read_form, require_csrf

router = APIRouter(prefix=PREFIX, route_class=MonitorRoute)

PageNumber = Annotated[int, Query(ge=1, le=1_000_000)]
PAGE_SIZE = 25


def _missing(request: Request, name: str) -> HTMLResponse:
    return render(request, "missing_queue.html", 404, name=name, stats=None)


@router.get("/queues", response_class=HTMLResponse)
async def queues(request: Request, monitor: MonitorDep) -> HTMLResponse:
    """Every queue with its size and latency."""
    stats, summaries = await run_in_threadpool(lambda: (monitor.stats(), monitor.queues()))
    return render(request, "queues.html", refresh=5, stats=stats, queues=summaries)


@router.get("/queues/{name}", response_class=HTMLResponse)
async def queue(
    request: Request,
    monitor: MonitorDep,
    name: str,
    page: PageNumber = 1,
    order: QueueOrder = QueueOrder.NEWEST_FIRST,
) -> HTMLResponse:
    """A page of the jobs waiting in one queue."""
    try:
        stats, jobs = await run_in_threadpool(
            lambda: (monitor.stats(), monitor.queue_jobs(name, page, PAGE_SIZE, order))
        )
    except InvalidQueueName:
        return _missing(request, name)
    known = await known_jids(request, (job.jid for job in jobs.items))
    return render(request, "queue.html", stats=stats, name=name, jobs=jobs, order=order.value, known=known)


@router.post("/queues/{name}/delete", dependencies=[Depends(require_csrf)])
async def delete_job(request: Request, monitor: MonitorDep, name: str) -> Response:
    """Delete one waiting job, named by its exact member."""
    form = await read_form(request)
    member = member_of(form.get("member", [""])[0])
    back = form.get("back", [""])[0] or f"{PREFIX}/queues/{name}"
    if member is None:
        return done(back, "none")
    try:
        deleted = await run_in_threadpool(monitor.delete_queue_job, name, member)
    except InvalidQueueName:
        return _missing(request, name)
    return done(back, "delete", int(deleted))


@router.get("/queues/{name}/clear", response_class=HTMLResponse)
async def clear_confirm(request: Request, monitor: MonitorDep, name: str) -> HTMLResponse:
    """The confirm step of clearing a queue: what would go."""
    summaries = await run_in_threadpool(monitor.queues)
    found = next((q for q in summaries if q.name == name), None)
    if found is None:
        return _missing(request, name)
    return render(request, "queue_clear.html", queue=found)


@router.post("/queues/{name}/clear", dependencies=[Depends(require_csrf)])
async def clear(request: Request, monitor: MonitorDep, name: str) -> Response:
    """Delete every job of the queue and the queue itself (Sidekiq's "Delete" on the Queues page)."""
    try:
        cleared = await run_in_threadpool(monitor.clear_queue, name)
    except InvalidQueueName:
        return _missing(request, name)
    return done(f"{PREFIX}/queues", "clear", cleared)
