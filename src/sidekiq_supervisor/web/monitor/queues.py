"""``/sidekiq/queues``: each queue's size and latency, a page of one queue's jobs, delete and clear."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from sidekiq_supervisor.services.sidekiq_monitor import MAX_PAGE_SIZE, InvalidQueueName, QueueOrder, Sort
from sidekiq_supervisor.web.monitor.deps import MonitorDep, MonitorRoute, known_jids
from sidekiq_supervisor.web.monitor.rendering import PREFIX, done, member_of, render, url
from sidekiq_supervisor.web.security import read_form, require_csrf

router = APIRouter(prefix=PREFIX, route_class=MonitorRoute)

PageNumber = Annotated[int, Query(ge=1, le=1_000_000)]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
PAGE_SIZE = 25
# Sidekiq's ``?direction=`` for the same choice: ``asc`` starts from the next job to run.
DIRECTIONS = {"asc": QueueOrder.OLDEST_FIRST, "desc": QueueOrder.NEWEST_FIRST}


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
    order: QueueOrder | None = None,
    direction: Sort | None = None,
    count: PageSize = PAGE_SIZE,
) -> HTMLResponse:
    """A page of the jobs waiting in one queue."""
    order = order or (DIRECTIONS[direction.value] if direction else QueueOrder.NEWEST_FIRST)
    try:
        stats, jobs = await run_in_threadpool(
            lambda: (monitor.stats(), monitor.queue_jobs(name, page, count, order))
        )
    except InvalidQueueName:
        return _missing(request, name)
    known = await known_jids(request, (job.jid for job in jobs.items))
    return render(
        request, "queue.html", stats=stats, name=name, jobs=jobs, order=order.value, known=known,
        refresh=5, live_default="off",
    )  # fmt: skip


@router.post("/queues/{name}/delete", dependencies=[Depends(require_csrf)])
async def delete_job(request: Request, monitor: MonitorDep, name: str) -> Response:
    """Delete one waiting job, named by its exact member: ``member`` (base64, from this app's form)
    or ``key_val`` (the member's text, from Sidekiq's)."""
    form = await read_form(request)
    member = member_of(form.get("member", [""])[0]) if "member" in form else None
    if member is None and "key_val" in form:
        member = form["key_val"][0]
    back = form.get("back", [""])[0] or url(request, f"/queues/{name}")
    if member is None:
        return done(request, back, "none")
    try:
        deleted = await run_in_threadpool(monitor.delete_queue_job, name, member)
    except InvalidQueueName:
        return _missing(request, name)
    return done(request, back, "delete", int(deleted))


@router.get("/queues/{name}/clear", response_class=HTMLResponse)
async def clear_confirm(request: Request, monitor: MonitorDep, name: str) -> HTMLResponse:
    """The confirm step of clearing a queue: what would go."""
    summaries = await run_in_threadpool(monitor.queues)
    found = next((q for q in summaries if q.name == name), None)
    if found is None:
        return _missing(request, name)
    return render(request, "queue_clear.html", queue=found)


@router.post("/queues/{name}", dependencies=[Depends(require_csrf)])
@router.post("/queues/{name}/clear", dependencies=[Depends(require_csrf)])
async def clear(request: Request, monitor: MonitorDep, name: str) -> Response:
    """Delete every job of the queue and the queue itself (Sidekiq's "Delete" on the Queues page,
    which posts to the queue's own URL)."""
    try:
        cleared = await run_in_threadpool(monitor.clear_queue, name)
    except InvalidQueueName:
        return _missing(request, name)
    return done(request, url(request, "/queues"), "clear", cleared)
