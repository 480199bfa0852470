"""``/durations``: per job class, queued→complete and started→complete summaries, and a histogram."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from sidekiq_supervisor.domain.durations import DurationOrigin, DurationSummary
from sidekiq_supervisor.domain.histogram import DISPLAY_EDGES
from sidekiq_supervisor.domain.rollups import Window
from sidekiq_supervisor.services.dashboard import ClassSummary, Dashboard
from sidekiq_supervisor.web import charts
from sidekiq_supervisor.web.pages.deps import DashboardDep
from sidekiq_supervisor.web.pages.templating import render, template_vars

router = APIRouter()

Name = Annotated[str, Query(max_length=255, pattern=r"^[^\x00]*$")]
Origin = Annotated[DurationOrigin, Query(alias="from")]


@router.get("/durations", response_class=HTMLResponse)
async def durations(
    request: Request,
    dashboard: DashboardDep,
    origin: Origin = DurationOrigin.STARTED,
    job_class: Name = "",
    window: Window = Window.ALL,
) -> HTMLResponse:
    """Both duration questions per class over the jobs completed in a window, and the histogram of
    one of them."""
    page = await run_in_threadpool(_gather, dashboard, origin, job_class or None, window)
    return render(
        request,
        "durations.html",
        refresh=30,
        origin=origin.value,
        job_class=job_class,
        window=window.value,
        windows=WINDOWS,
        **template_vars(page),
    )


# The window links, in the order shown.
WINDOWS = [
    (Window.HOUR.value, "1 h"),
    (Window.DAY.value, "24 h"),
    (Window.WEEK.value, "7 days"),
    (Window.ALL.value, "all"),
]


@dataclass(frozen=True, slots=True)
class DurationsPage:
    """The summaries per class from either origin, and the histogram (None when nothing finished)."""

    queued: list[ClassSummary]
    started: list[ClassSummary]
    histogram: Markup | None
    # The jobs retention pruned, from their roll-ups, by origin.
    pruned: dict[DurationOrigin, DurationSummary]


def _gather(
    dashboard: Dashboard, origin: DurationOrigin, job_class: str | None, window: Window
) -> DurationsPage:
    bins = dashboard.histogram(origin, job_class, window)
    bars = [(_bin_label(edge), count) for edge, count in bins]
    summaries = dashboard.class_summaries_by_origin(window)
    return DurationsPage(
        queued=summaries[DurationOrigin.QUEUED],
        started=summaries[DurationOrigin.STARTED],
        histogram=charts.bar_chart("Durations histogram", bars) if bars else None,
        pruned=dashboard.pruned_summaries(job_class),
    )


def _bin_label(upper: int | None) -> str:
    # Axis labels stay short (the bins are 1-2-5 steps): "<500ms", "<2s", "<1m40s", "≥1d".
    if upper is None:
        return "≥" + _short(DISPLAY_EDGES[-1])
    return "<" + _short(upper)


def _short(micros: int) -> str:
    seconds = micros / 1_000_000
    if seconds < 1:
        return f"{micros // 1000}ms"
    if seconds < 60:
        return f"{seconds:g}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s".replace("m00s", "m")
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m".replace("h00m", "h")
