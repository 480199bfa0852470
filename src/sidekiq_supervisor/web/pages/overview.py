"""``/``: counts per status, events per minute, the slowest classes, long-uncompleted jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from sidekiq_supervisor.services.dashboard import ClassSummary, Dashboard, EventSeries, StatusCounts
from sidekiq_supervisor.services.results import Job
from sidekiq_supervisor.web import charts
from sidekiq_supervisor.web.deps import services_of
from sidekiq_supervisor.web.pages.deps import DashboardDep
from sidekiq_supervisor.web.pages.templating import render, template_vars

router = APIRouter()

Threshold = Annotated[float | None, Query(gt=0, le=7 * 24 * 60, description="Minutes uncompleted.")]
Hours = Annotated[int, Query(ge=1, le=24)]


@router.get("/", response_class=HTMLResponse)
async def overview(
    request: Request,
    dashboard: DashboardDep,
    threshold: Threshold = None,
    hours: Hours = 3,
) -> HTMLResponse:
    """The overview page."""
    minutes = threshold or services_of(request.scope).settings.uncompleted_alert_minutes
    page = await run_in_threadpool(_gather, dashboard, minutes, hours)
    return render(request, "overview.html", refresh=10, threshold=minutes, hours=hours, **template_vars(page))


@dataclass(frozen=True, slots=True)
class OverviewPage:
    """What the overview shows, read from the ledger in one go."""

    counts: StatusCounts
    events: EventSeries
    totals: dict[str, int]
    chart: Markup
    slowest: list[ClassSummary]
    stuck: list[Job]


def _gather(dashboard: Dashboard, minutes: float, hours: int) -> OverviewPage:
    events = dashboard.events(hours)
    chart = charts.line_chart("Events per minute", events.start, events.series, timedelta(minutes=1))
    return OverviewPage(
        counts=dashboard.status_counts(),
        events=events,
        totals={kind: sum(values) for kind, values in events.series.items()},
        chart=chart,
        slowest=dashboard.slowest_classes(),
        stuck=dashboard.stuck_jobs(minutes),
    )
