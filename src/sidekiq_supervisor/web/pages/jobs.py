"""``/jobs``: keyset-paged job lists with the seed's filters, and ``/jobs/{jid}``: one job's story."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from sidekiq_supervisor.domain.filters import MAX_FILTER_LENGTH
from sidekiq_supervisor.domain.model import SEED_LISTS, Selection
from sidekiq_supervisor.services.ledger import JobFilter
from sidekiq_supervisor.web.pages.deps import DashboardDep
from sidekiq_supervisor.web.pages.templating import render
from sidekiq_supervisor.web.paths import under_root

router = APIRouter()

PAGE_SIZE = 50
NO_NUL = r"^[^\x00]*$"


Text = Annotated[str, Query(max_length=MAX_FILTER_LENGTH, pattern=NO_NUL)]
Name = Annotated[str, Query(max_length=255, pattern=NO_NUL)]
Cursor = Annotated[int | None, Query(ge=0, le=2**63 - 1)]


@router.get("/jobs", response_class=HTMLResponse)
async def job_list(
    request: Request,
    dashboard: DashboardDep,
    status: Selection = Selection.ALL,
    q: Text = "",
    job_class: Name = "",
    queue: Name = "",
    cursor: Cursor = None,
    count: bool = False,
) -> HTMLResponse:
    """A page of jobs, newest first, with a link to the next page, and the exact count: at once
    when the ledger keeps it (no arguments filter), else on request."""
    job_filter = JobFilter(status.status, q or None, job_class or None, queue or None)
    jobs, next_cursor = await run_in_threadpool(dashboard.page, job_filter, limit=PAGE_SIZE, cursor=cursor)
    params = {"status": status.value, "q": q, "job_class": job_class, "queue": queue}
    params = {key: value for key, value in params.items() if value}
    return render(
        request,
        "jobs.html",
        refresh=None if cursor else 10,
        jobs=jobs,
        selection=status.value,
        selections=[s.value for s in SEED_LISTS],
        filters=params,
        first_page=cursor is None,
        next_url=None
        if next_cursor is None
        else under_root(request, "/jobs?" + urlencode({**params, "cursor": next_cursor})),
        count_url=under_root(request, "/jobs?" + urlencode({**params, "count": 1})),
        exact_count=await run_in_threadpool(dashboard.ledger.count, job_filter)
        if count or dashboard.ledger.counts_at_once(job_filter)
        else None,
        tab_counts=await run_in_threadpool(dashboard.status_counts),
    )


@router.get("/jobs/{jid}", response_class=HTMLResponse)
async def job_page(request: Request, jid: str, dashboard: DashboardDep) -> HTMLResponse:
    """One job: its status, durations, where it is in Sidekiq, and every report of its history."""
    view = await run_in_threadpool(dashboard.job_view, jid)
    if view is None:
        return render(request, "missing.html", 404, jid=jid)
    return render(request, "job.html", refresh=15, view=view)
