"""Rich renderings of read models, shared by the console's printed results and the CLI."""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, Group
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


NAME_WIDTH_CAP = 48
ARGUMENTS_MIN_WIDTH = 10


def job_table(jobs: Sequence[Any], *, title: str, total: int | None = None) -> JobTable:
    """A table of jobs (with a duration column when the rows have one) and its caption, laid out
    for the width it is printed in: readable at 80 columns, using whatever width there is."""
    return JobTable(list(jobs), title, total)


class JobTable:
    """A Rich renderable: the job table built for the console's width when it is printed."""

    def __init__(self, jobs: list[Any], title: str, total: int | None) -> None:
        self.jobs = jobs
        self.title = title
        self.total = total

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Table]:
        """The table for ``options.max_width`` columns."""
        yield self.table(options.max_width)

    def table(self, width: int) -> Table:
        """The table for ``width`` columns: the richest layout that fits, every column as wide as
        its widest cell, the arguments in what is left (cut with an ellipsis, never the names)."""
        jobs = self.jobs
        layouts = _LAYOUTS if not (jobs and hasattr(jobs[0], "duration")) else _WITH_DURATION
        for layout in layouts:
            rows = [[cell(job) for _, cell in layout.columns] for job in jobs]
            widths = [
                max([len(header), *(len(row[i]) for row in rows)])
                for i, (header, _) in enumerate(layout.columns)
            ]
            left = width - sum(widths) - layout.overhead(len(widths) + 1)
            if left >= ARGUMENTS_MIN_WIDTH:
                break
        table = Table(
            title=self.title,
            caption=_caption(len(jobs), self.total),
            title_justify="left",
            box=layout.box,
            show_edge=layout.box is box.HEAVY_HEAD,
        )
        for (header, _), column_width in zip(layout.columns, widths, strict=True):
            table.add_column(header, no_wrap=True, width=column_width, overflow="ellipsis")
            if header == "queue":
                table.add_column(
                    "arguments", no_wrap=True, overflow="ellipsis", width=max(left, ARGUMENTS_MIN_WIDTH)
                )
        status_at = [header for header, _ in layout.columns].index("status")
        for job, row in zip(jobs, rows, strict=True):
            row[status_at] = f"[{STATUS_STYLES.get(job.status, '')}]{row[status_at]}[/]"
            table.add_row(*row[:3], format_arguments(job.arguments), *row[3:])
        return table


Column = tuple[str, Callable[[Any], str]]


@dataclass(frozen=True)
class _Layout:
    columns: tuple[Column, ...]
    box: box.Box

    def overhead(self, count: int) -> int:
        """Borders and padding of ``count`` columns: a space each side and a line between them,
        plus the two edges when they are drawn."""
        return 3 * count + 1 if self.box is box.HEAVY_HEAD else 3 * count - 1


_JID: Column = ("jid", lambda job: job.jid)
_SHORT_JID: Column = ("jid", lambda job: job.jid[:12] + ("…" if len(job.jid) > 12 else ""))
_NAMES: tuple[Column, ...] = (("class", lambda job: job.job_class), ("queue", lambda job: job.queue))
_STATUS: Column = ("status", lambda job: str(job.status))
_TRIES: Column = ("tries", lambda job: str(job.attempts))
_DURATION: Column = ("duration", lambda job: format_duration(job.duration))
_FULL_TIMES: tuple[Column, ...] = (
    ("queued", lambda job: format_time(job.queued_at)),
    ("started", lambda job: format_time(job.started_at)),
    ("completed", lambda job: format_time(job.completed_at)),
)
_SHORT_TIMES: tuple[Column, ...] = (
    ("queued", lambda job: format_short_time(job.queued_at)),
    ("started", lambda job: format_short_time(job.started_at)),
    ("completed", lambda job: format_short_time(job.completed_at)),
)
_LATEST: tuple[Column, ...] = (("latest", lambda job: format_short_time(_latest(job))),)
# Richest first: each drops what matters least, until the names and some arguments fit. The jid is
# shortened only on the narrowest terminals, where no whole one fits beside the names.
_LAYOUTS = [
    _Layout((_JID, *_NAMES, _STATUS, *_FULL_TIMES, _TRIES), box.HEAVY_HEAD),
    _Layout((_JID, *_NAMES, _STATUS, *_SHORT_TIMES, _TRIES), box.HEAVY_HEAD),
    _Layout((_JID, *_NAMES, _STATUS, *_LATEST, _TRIES), box.HEAVY_HEAD),
    _Layout((_JID, *_NAMES, _STATUS, *_LATEST), box.SIMPLE_HEAD),
    _Layout((_JID, *_NAMES, _STATUS), box.SIMPLE_HEAD),
    _Layout((_SHORT_JID, *_NAMES, _STATUS), box.SIMPLE_HEAD),
]
_WITH_DURATION = [_Layout((*layout.columns, _DURATION), layout.box) for layout in _LAYOUTS]


def _latest(job: Any) -> datetime | None:
    moments = [moment for moment in (job.queued_at, job.started_at, job.completed_at) if moment]
    return max(moments) if moments else None


def _widest(names: Iterable[str]) -> int:
    return min(NAME_WIDTH_CAP, max((len(name) for name in names), default=5))


def format_short_time(moment: datetime | None) -> str:
    """UTC month, day and time to the second, or a dash (for narrow tables)."""
    return "—" if moment is None else moment.strftime("%m-%d %H:%M:%S")


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


# Restart and liveness tables show the arguments only where the reasons still have room.
ARGUMENTS_SHOWN_FROM = 140


class WidthAware:
    """A Rich renderable that builds its table for the width it is printed in."""

    def __init__(self, build: Callable[[int], Table]) -> None:
        self.build = build

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Table]:
        """The table for ``options.max_width`` columns."""
        yield self.build(options.max_width)


def restart_table(report: Any, verb: str) -> WidthAware:
    """A restart's outcome: each job restarted (with its new jid) or skipped (with the reason)."""
    outcomes = [*report.restarted, *report.skipped]
    title = f"{verb} {len(report.restarted):,}, skipped {len(report.skipped):,}"

    def build(width: int) -> Table:
        table = _named_jobs_table(title, [o.original for o in outcomes], width)
        table.add_column("outcome", no_wrap=True)
        table.add_column("new jid / reason", overflow="fold", ratio=1, min_width=20)
        for outcome in outcomes:
            detail = (outcome.new_jid or "") if outcome.taken else (outcome.reason or "")
            cells = _named_job_cells(outcome.original, width)
            table.add_row(*cells, verb if outcome.taken else "skipped", detail)
        return table

    return WidthAware(build)


# Below this width a job is named in one column, its jid over its class and queue.
STACKED_BELOW = 120


def _named_jobs_table(title: str, jobs: Sequence[Any], width: int) -> Table:
    """A table whose first columns name each job (jid, class, queue, and arguments when wide)."""
    if width < STACKED_BELOW:
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
        names = (f"{job.job_class} · {job.queue}" for job in jobs)
        table.add_column("job", no_wrap=True, min_width=max(24, _widest(names)))
        return table
    table = Table(title=title, title_justify="left")
    table.add_column("jid", no_wrap=True)
    table.add_column("class", no_wrap=True, min_width=_widest(job.job_class for job in jobs))
    table.add_column("queue", no_wrap=True, min_width=_widest(job.queue for job in jobs))
    if width >= ARGUMENTS_SHOWN_FROM:
        table.add_column("arguments", no_wrap=True, overflow="ellipsis", max_width=ARGUMENTS_WIDTH)
    return table


def _named_job_cells(job: Any, width: int) -> list[str]:
    if width < STACKED_BELOW:
        return [f"{job.jid}\n{job.job_class} · {job.queue}"]
    cells = [job.jid, job.job_class, job.queue]
    if width >= ARGUMENTS_SHOWN_FROM:
        cells.append(format_arguments(job.arguments))
    return cells


LIVENESS_STYLES = {"running": "green", "retrying": "cyan", "orphaned": "red", "unknown": "yellow"}


def liveness_table(rows: Sequence[Any]) -> WidthAware:
    """Uncompleted jobs with their liveness and the reason."""
    title = f"{len(rows):,} uncompleted jobs"

    def build(width: int) -> Table:
        table = _named_jobs_table(title, [row.job for row in rows], width)
        table.add_column("started", no_wrap=True)
        table.add_column("liveness", no_wrap=True)
        table.add_column("why", overflow="fold", ratio=1, min_width=20)
        for row in rows:
            style = LIVENESS_STYLES.get(row.verdict.liveness, "")
            table.add_row(
                *_named_job_cells(row.job, width),
                format_short_time(row.job.started_at),
                f"[{style}]{row.verdict.liveness}[/]",
                row.verdict.reason,
            )
        return table

    return WidthAware(build)


def stacked(*renderables: Any) -> Group:
    """Renderables one under the other."""
    return Group(*renderables)


def to_text(renderable: Any, width: int | None = None) -> str:
    """Render to plain text (no colour codes), for ``repr`` in consoles and logs."""
    width = width or shutil.get_terminal_size((160, 24)).columns
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(renderable)
    return console.file.getvalue().rstrip("\n")  # type: ignore[attr-defined]
