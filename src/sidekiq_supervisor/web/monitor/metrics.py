"""``/sidekiq/metrics``: executions, failures and run time per job class (Sidekiq 7 and later), and
``/sidekiq/metrics/<Class>``: one class minute by minute, with the spread of its run times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from sidekiq_supervisor.services.sidekiq_monitor import HISTOGRAM_LABELS, ClassDetail, MetricsResult, Stats
from sidekiq_supervisor.web import charts
from sidekiq_supervisor.web.monitor.deps import MonitorDep, MonitorRoute
from sidekiq_supervisor.web.monitor.rendering import PREFIX, render
from sidekiq_supervisor.web.pages.templating import template_vars

router = APIRouter(prefix=PREFIX, route_class=MonitorRoute)

# Sidekiq's periods: 1-8 h from the per-minute counters; 24-72 h from Sidekiq 8's 10-minute rollups.
PERIODS = {"1h": (60, None), "2h": (120, None), "4h": (240, None), "8h": (480, None),
           "24h": (None, 24), "48h": (None, 48), "72h": (None, 72)}  # fmt: skip
Period = Annotated[str, Query(pattern="^(1|2|4|8|24|48|72)h$")]
ClassFilter = Annotated[str, Query(max_length=200)]
MAX_CLASSES = 100


@dataclass(frozen=True, slots=True)
class MetricsPage:
    """The figures, every class's metrics of the period, and the Sidekiq major version."""

    stats: Stats
    result: MetricsResult
    major: int


@dataclass(frozen=True, slots=True)
class ClassMetricsPage:
    """The figures, one class's minutes and run-time histogram, and the Sidekiq major version."""

    stats: Stats
    detail: ClassDetail
    major: int


@router.get("/metrics", response_class=HTMLResponse)
async def metrics(
    request: Request, monitor: MonitorDep, period: Period = "1h", substr: ClassFilter = ""
) -> HTMLResponse:
    """The Metrics page."""
    minutes, hours = PERIODS[period]

    def gather() -> MetricsPage:
        return MetricsPage(
            stats=monitor.stats(),
            result=monitor.metrics(minutes=minutes, hours=hours, class_filter=substr or None),
            major=monitor.sidekiq_major(),
        )

    view = await run_in_threadpool(gather)
    result = view.result
    classes = result.classes[:MAX_CLASSES]
    totals = {
        "executions": sum(c.executions for c in result.classes),
        "failures": sum(c.failures for c in result.classes),
    }
    return render(
        request, "metrics.html", refresh=60, period=period, periods=list(PERIODS), substr=substr,
        classes=classes, totals=totals, **template_vars(view),
    )  # fmt: skip


# A class's page reads per-minute data, which Sidekiq keeps 8 hours: longer periods show 8 hours.
CLASS_PERIODS = ("1h", "2h", "4h", "8h")


@router.get("/metrics/{name}", response_class=HTMLResponse)
async def class_metrics(
    request: Request, monitor: MonitorDep, name: str, period: Period = "1h"
) -> HTMLResponse:
    """One class's page: executions and failures per minute, and how long its runs took."""
    period = period if period in CLASS_PERIODS else "8h"
    minutes = PERIODS[period][0] or 480

    def gather() -> ClassMetricsPage:
        return ClassMetricsPage(
            stats=monitor.stats(), detail=monitor.class_metrics(name, minutes), major=monitor.sidekiq_major()
        )

    view = await run_in_threadpool(gather)
    detail = view.detail
    series = detail.metrics.buckets
    start = datetime.fromtimestamp(detail.starts_at, UTC)
    per_minute = charts.line_chart(
        f"{name}: executions and failures per minute, last {period}",
        start,
        {"processed": [b.executions for b in series], "failed": [b.failures for b in series]},
        timedelta(minutes=1),
    )
    buckets = list(zip(HISTOGRAM_LABELS, detail.histogram, strict=True))
    spread = charts.bar_chart(f"{name}: successful runs by time taken, last {period}", buckets)
    return render(
        request, "metrics_class.html", refresh=60 if period == "1h" else None, name=name, period=period,
        periods=CLASS_PERIODS, per_minute=per_minute, spread=spread, buckets=buckets, **template_vars(view),
    )  # fmt: skip
