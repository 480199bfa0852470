"""``/restart``: preview what a restart would take and skip, then confirm it (a CSRF-checked POST)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from sidekiq_supervisor.domain.filters import MAX_FILTER_LENGTH
from sidekiq_supervisor.services.liveness import SidekiqUnavailable
from sidekiq_supervisor.services.restart import RestartFailed
from sidekiq_supervisor.web.errors import with_retry_after
from sidekiq_supervisor.web.pages.deps import DashboardDep
from sidekiq_supervisor.web.pages.templating import render, template_vars
from sidekiq_supervisor.web.security import read_form, require_csrf

router = APIRouter()

MAX_MINUTES = 365 * 24 * 60
Needle = Annotated[str, Query(max_length=MAX_FILTER_LENGTH, pattern=r"^[^\x00]*$")]
Minutes = Annotated[float | None, Query(ge=0, le=MAX_MINUTES)]
# A preview of this many restartable jobs fits a form (24-hex jids); larger sets: narrow the filter.
MAX_CONFIRM = 5000


@dataclass(frozen=True, slots=True)
class RestartForm:
    """The preview's filter form, as the page shows it again."""

    q: str
    older_than: float | str  # "" when unset: the field stays empty
    max_confirm: int = MAX_CONFIRM


def _older_than(minutes: float | None) -> timedelta | None:
    return None if not minutes else timedelta(minutes=minutes)


@router.get("/restart", response_class=HTMLResponse)
async def restart_preview(
    request: Request, dashboard: DashboardDep, q: Needle = "", older_than: Minutes = None
) -> HTMLResponse:
    """The filter form and the dry run: what would be restarted and what skipped, with reasons."""
    context = template_vars(RestartForm(q, older_than or ""))
    try:
        report, more = await run_in_threadpool(dashboard.restart_preview, q or None, _older_than(older_than))
    except (RestartFailed, SidekiqUnavailable) as exc:
        return with_retry_after(
            render(request, "restart.html", 503, report=None, more=False, problem=str(exc), **context)
        )
    return render(request, "restart.html", report=report, more=more, problem=None, **context)


@router.post("/restart", response_class=HTMLResponse, dependencies=[Depends(require_csrf)])
async def restart_confirm(request: Request, dashboard: DashboardDep) -> HTMLResponse:
    """Restart the previewed jobs that are still restartable; show what happened to each."""
    form = await read_form(request)
    q = form.get("q", [""])[0]
    if len(q) > MAX_FILTER_LENGTH or "\x00" in q:
        return render(request, "restarted.html", 422, report=None, problem="invalid filter", q="")
    chosen = frozenset(form.get("jids", [])[:MAX_CONFIRM])
    older_than = _older_than(_minutes(form.get("older_than", [""])[0]))
    wait = form.get("wait", [""])[0] == "on"
    try:
        report = await run_in_threadpool(partial(dashboard.restart, wait=wait), q or None, older_than, chosen)
    except (RestartFailed, SidekiqUnavailable) as exc:
        done = exc.report if isinstance(exc, RestartFailed) else None
        return with_retry_after(render(request, "restarted.html", 503, report=done, problem=str(exc), q=q))
    return render(request, "restarted.html", report=report, problem=None, q=q)


def _minutes(text: str) -> float | None:
    try:
        minutes = float(text)
    except ValueError:
        return None
    return minutes if 0 < minutes <= MAX_MINUTES else None
