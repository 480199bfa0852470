"""Rich renderings of read models, shared by the console's printed results and the CLI."""

from __future__ import annotations

import io
import shutil
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console, Group
from rich.table import Table

from sidekiq_supervisor.domain import json_text
from sidekiq_supervisor.domain.durations import DurationSummary

ARGUMENTS_WIDTH = 60
STATUS_STYLES = {"queued": "cyan", "started": "yellow", "complete": "green"}


def format_duration(duration: timedelta | None) -> str:
    """A duration people read at a glance: ``840ms``, ``12.3s``, ``4m 05s``, ``2h 01m``."""
    if duration is None:
        return "—"
    seconds = duration.total_seconds()
    if abs(seconds) < 1:
        return f"{seconds * 1000:.0f}ms"
    if abs(seconds) < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_time(moment: datetime | None) -> str:
    """UTC time to the second, or a dash."""
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def format_arguments(arguments: Any) -> str:
    """Arguments as compact JSON, shortened to fit a table cell."""
    return json_text.preview(arguments, ARGUMENTS_WIDTH)


def job_table(jobs: Sequence[Any], *, title: str, total: int | None = None) -> Table:
    """A table of jobs (with a duration column when the rows have one) and its caption."""
    with_duration = bool(jobs) and hasattr(jobs[0], "duration")
    table = Table(title=title, caption=_caption(len(jobs), total), title_justify="left")
    # A jid is what people copy from the table: never cut it; the arguments fold instead.
    table.add_column("jid", no_wrap=True, min_width=24)
    table.add_column("class", overflow="fold")
    table.add_column("queue", overflow="fold")
    table.add_column("arguments", overflow="fold", ratio=1)
    for header in ("status", "queued", "started", "completed"):
        table.add_column(header, no_wrap=True)
    table.add_column("tries", justify="right")
    if with_duration:
        table.add_column("duration", justify="right")
    for job in jobs:
        cells = [
            job.jid,
            job.job_class,
            job.queue,
            format_arguments(job.arguments),
            f"[{STATUS_STYLES.get(job.status, '')}]{job.status}[/]",
            format_time(job.queued_at),
            format_time(job.started_at),
            format_time(job.completed_at),
            str(job.attempts),
        ]
        if with_duration:
            cells.append(format_duration(job.duration))
        table.add_row(*cells)
    return table


def _caption(shown: int, total: int | None) -> str:
    if total is None or total == shown:
        return f"{shown:,} job{'s' if shown != 1 else ''}"
    return f"showing the newest {shown:,} of {total:,} jobs (iterate, or use .first(n), for more)"


def summary_table(summary: DurationSummary) -> Table:
    """One row: count, mean, p50, p95, p99 and max, titled as an estimate when it is one."""
    title = "summary (estimated from a sample)" if summary.estimated else "summary"
    table = Table(title=title, title_justify="left")
    for header in ("count", "mean", "p50", "p95", "p99", "max"):
        table.add_column(header, justify="right")
    table.add_row(
        f"{summary.count:,}",
        *(
            format_duration(value)
            for value in (summary.mean, summary.p50, summary.p95, summary.p99, summary.max)
        ),
    )
    return table


def restart_table(report: Any, verb: str) -> Table:
    """A restart's outcome: each job restarted (with its new jid) or skipped (with the reason)."""
    table = Table(
        title=f"{verb} {len(report.restarted):,}, skipped {len(report.skipped):,}", title_justify="left"
    )
    for header in ("jid", "class", "queue", "arguments", "outcome", "new jid / reason"):
        table.add_column(header)
    for outcome in report.restarted:
        job = outcome.original
        table.add_row(
            job.jid, job.job_class, job.queue, format_arguments(job.arguments), verb, outcome.new_jid or ""
        )
    for outcome in report.skipped:
        job = outcome.original
        table.add_row(
            job.jid, job.job_class, job.queue, format_arguments(job.arguments), "skipped", outcome.reason
        )
    return table


LIVENESS_STYLES = {"running": "green", "retrying": "cyan", "orphaned": "red", "unknown": "yellow"}


def liveness_table(rows: Sequence[Any]) -> Table:
    """Uncompleted jobs with their liveness and the reason."""
    table = Table(title=f"{len(rows):,} uncompleted jobs", title_justify="left")
    table.add_column("jid", no_wrap=True, min_width=24)
    for header in ("class", "queue", "arguments", "started", "liveness", "why"):
        table.add_column(header, overflow="fold")
    for row in rows:
        job, verdict = row.job, row.verdict
        style = LIVENESS_STYLES.get(verdict.liveness, "")
        table.add_row(
            job.jid,
            job.job_class,
            job.queue,
            format_arguments(job.arguments),
            format_time(job.started_at),
            f"[{style}]{verdict.liveness}[/]",
            verdict.reason,
        )
    return table


def stacked(*renderables: Any) -> Group:
    """Renderables one under the other."""
    return Group(*renderables)


def to_text(renderable: Any, width: int | None = None) -> str:
    """Render to plain text (no colour codes), for ``repr`` in consoles and logs."""
    width = width or shutil.get_terminal_size((160, 24)).columns
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(renderable)
    return console.file.getvalue().rstrip("\n")  # type: ignore[attr-defined]
