"""Rich renderings of read models, shared by the console's printed results and the CLI."""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console, ConsoleOptions, Group
from rich.table import Table
from rich.text import Text

from sidekiq_supervisor.domain import json_text
from sidekiq_supervisor.domain.durations import DurationSummary, format_duration
from sidekiq_supervisor.table_fit import Column, Flexible, Layout, fitted

ARGUMENTS_WIDTH = 60
STATUS_STYLES = {"queued": "cyan", "started": "yellow", "complete": "green"}


def format_time(moment: datetime | None) -> str:
    """UTC time to the second, or a dash."""
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def format_arguments(arguments: Any) -> str:
    """Arguments as compact JSON, shortened to fit a table cell."""
    return json_text.preview(arguments, ARGUMENTS_WIDTH)


# jid, class and queue come from reports: a control character (a terminal escape, a newline) is
# shown as U+FFFD, so it can neither drive the terminal nor break a row in two.
CONTROL_CHARACTERS = {code: "\N{REPLACEMENT CHARACTER}" for code in (*range(32), 127)}
# The arguments column gets at least this much, else a narrower layout is tried.
ARGUMENTS_MIN_WIDTH = 10
# The most of a job's arguments laid out in a table: more than any terminal is wide.
ARGUMENTS_LAID_OUT = 500
# Beside a reason the arguments get at most this much: the reason matters more.
ARGUMENTS_BESIDE_REASONS = 40
# A reason column narrower than this wraps too often to read: a narrower layout is tried.
REASON_MIN_WIDTH = 36
SHORT_JID = 12


def shown(name: str) -> str:
    """A name from a report, safe to print: control characters replaced."""
    return name.translate(CONTROL_CHARACTERS)


def short_jid(jid: str) -> str:
    """The jid's first characters (enough to tell jobs apart), with an ellipsis when cut."""
    jid = shown(jid)
    return jid if len(jid) <= SHORT_JID else jid[:SHORT_JID] + "…"


def _status(job: Any) -> Text:
    return Text(str(job.status), style=STATUS_STYLES.get(job.status, ""))


def _named(jid: Callable[[str], str]) -> Column:
    """Class over queue and jid: for terminals too narrow for them side by side."""

    def cell(job: Any) -> Text:
        return Text.assemble(shown(job.job_class), "\n", shown(job.queue), (f" · {jid(job.jid)}", "dim"))

    return Column("job", cell)


_JID = Column("jid", lambda job: Text(shown(job.jid)))
_SHORT_JID = Column("jid", lambda job: Text(short_jid(job.jid)))
_CLASS = Column("class", lambda job: Text(shown(job.job_class)))
_QUEUE = Column("queue", lambda job: Text(shown(job.queue)))
_NAMED = _named(shown)
_NAMED_SHORT = _named(short_jid)
_STATUS = Column("status", _status)
_TRIES = Column("tries", lambda job: Text(str(job.attempts)), justify="right")
_DURATION = Column("duration", lambda job: Text(format_duration(job.duration)), justify="right")
_FULL_TIMES = (
    Column("queued", lambda job: Text(format_time(job.queued_at))),
    Column("started", lambda job: Text(format_time(job.started_at))),
    Column("completed", lambda job: Text(format_time(job.completed_at))),
)
_SHORT_TIMES = (
    Column("queued", lambda job: Text(format_short_time(job.queued_at))),
    Column("started", lambda job: Text(format_short_time(job.started_at))),
    Column("completed", lambda job: Text(format_short_time(job.completed_at))),
)
_LATEST = Column("latest", lambda job: Text(format_short_time(_latest(job))))
_ARGUMENTS = Flexible(
    "arguments", lambda job: Text(json_text.preview(job.arguments, ARGUMENTS_LAID_OUT)), ARGUMENTS_MIN_WIDTH
)
# Richest first: each drops what matters least, until the names and some arguments fit; then
# the names go one over the other. Whatever the layout, names are whole and the arguments cut.
_JOB_LAYOUTS = (
    Layout((_JID, _CLASS, _QUEUE), _ARGUMENTS, (_STATUS, *_FULL_TIMES, _TRIES)),
    Layout((_JID, _CLASS, _QUEUE), _ARGUMENTS, (_STATUS, *_SHORT_TIMES, _TRIES)),
    Layout((_JID, _CLASS, _QUEUE), _ARGUMENTS, (_STATUS, _LATEST, _TRIES)),
    Layout((_JID, _CLASS, _QUEUE), _ARGUMENTS, (_STATUS, _LATEST), boxed=False),
    Layout((_JID, _CLASS, _QUEUE), _ARGUMENTS, (_STATUS,), boxed=False),
    Layout((_SHORT_JID, _CLASS, _QUEUE), _ARGUMENTS, (_STATUS,), boxed=False),
    Layout((_NAMED,), _ARGUMENTS, (_STATUS, _LATEST), boxed=False),
    Layout((_NAMED_SHORT,), _ARGUMENTS, (_STATUS,), boxed=False),
)
_DURATION_LAYOUTS = tuple(layout.plus(_DURATION) for layout in _JOB_LAYOUTS)


def _job_card(job: Any) -> list[Text]:
    details = Text.assemble(
        shown(job.queue), " · ", _status(job), " · ", shown(job.jid), " · ", format_short_time(_latest(job))
    )
    if hasattr(job, "duration"):
        details.append(f" · {format_duration(job.duration)}")
    arguments = json_text.preview(job.arguments, ARGUMENTS_LAID_OUT)
    return [
        Text(shown(job.job_class), style="bold", overflow="fold"),
        details,
        Text(arguments, no_wrap=True, overflow="ellipsis"),
    ]


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
        """The table for ``width`` columns: the richest layout that fits (see ``table_fit``)."""
        with_duration = bool(self.jobs) and hasattr(self.jobs[0], "duration")
        layouts = _DURATION_LAYOUTS if with_duration else _JOB_LAYOUTS
        caption = _caption(len(self.jobs), self.total)
        return fitted(self.jobs, layouts, _job_card, width, title=self.title, caption=caption)


def _latest(job: Any) -> datetime | None:
    moments = [moment for moment in (job.queued_at, job.started_at, job.completed_at) if moment]
    return max(moments) if moments else None


def format_short_time(moment: datetime | None) -> str:
    """UTC month, day and time to the second, or a dash (for narrow tables)."""
    return "—" if moment is None else moment.strftime("%m-%d %H:%M:%S")


def _caption(count: int, total: int | None) -> str:
    if total is None or total == count:
        return f"{count:,} job{'s' if count != 1 else ''}"
    return f"showing the newest {count:,} of {total:,} jobs (iterate, or use .first(n), for more)"


def summary_table(summary: DurationSummary) -> Table:
    """One row: count, mean, p50, p95, p99 and max, titled as an estimate when it is one."""
    title = "summary"
    if summary.estimated:
        title = "summary (estimated from a sample)"
    elif summary.percentiles_estimated:
        title = "summary (percentiles estimated, at most 19% high)"
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


class WidthAware:
    """A Rich renderable that builds its table for the width it is printed in."""

    def __init__(self, build: Callable[[int], Table]) -> None:
        self.build = build

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Table]:
        """The table for ``options.max_width`` columns."""
        yield self.build(options.max_width)


_ARGUMENTS_BESIDE_REASONS = Column(
    "arguments", lambda job: Text(json_text.preview(job.arguments, ARGUMENTS_BESIDE_REASONS))
)
# How a job is named beside a reason, richest first, and whether the table is boxed.
_NAMES_BESIDE_REASONS: tuple[tuple[tuple[Column, ...], bool], ...] = (
    ((_JID, _CLASS, _QUEUE, _ARGUMENTS_BESIDE_REASONS), True),
    ((_JID, _CLASS, _QUEUE), True),
    ((_SHORT_JID, _CLASS, _QUEUE), False),
    ((_NAMED,), False),
    ((_NAMED_SHORT,), False),
)


def _reasons_table(
    rows: Sequence[Any],
    job_of: Callable[[Any], Any],
    columns: Sequence[tuple[Column, ...]],
    reason: Flexible,
    *,
    title: str,
    width: int,
) -> Table:
    """Rows that each name a job (``job_of`` finds it), then ``columns`` (alternatives, richest
    first), then a ``reason`` that wraps; laid out for ``width`` (see ``table_fit``)."""

    def of_job(column: Column) -> Column:
        return Column(column.header, lambda row: column.cell(job_of(row)), column.justify)

    layouts = [
        Layout((*map(of_job, names), *extra), reason, boxed=boxed)
        for extra in columns
        for names, boxed in _NAMES_BESIDE_REASONS
    ]

    def card(row: Any) -> list[Text]:
        job = job_of(row)
        details = Text(" · ").join(
            [Text(shown(job.queue)), *(c.cell(row) for c in columns[0]), Text(shown(job.jid))]
        )
        return [Text(shown(job.job_class), style="bold", overflow="fold"), details, reason.cell(row)]

    return fitted(rows, layouts, card, width, title=title)


def restart_table(report: Any, verb: str) -> WidthAware:
    """A restart's outcome: each job restarted (with its new jid) or skipped (with the reason)."""
    outcomes = [*report.restarted, *report.skipped]
    title = f"{verb} {len(report.restarted):,}, skipped {len(report.skipped):,}"
    outcome = Column("outcome", lambda row: Text(verb if row.taken else "skipped"))
    detail = Flexible(
        "new jid / reason",
        lambda row: Text((row.new_jid or "") if row.taken else (row.reason or "")),
        REASON_MIN_WIDTH,
        wrap=True,
    )
    return WidthAware(
        lambda width: _reasons_table(
            outcomes, lambda row: row.original, [(outcome,)], detail, title=title, width=width
        )
    )


LIVENESS_STYLES = {"running": "green", "retrying": "cyan", "orphaned": "red", "unknown": "yellow"}


def liveness_table(rows: Sequence[Any]) -> WidthAware:
    """Uncompleted jobs with their liveness and the reason."""
    title = f"{len(rows):,} uncompleted job{'s' if len(rows) != 1 else ''}"
    started = Column("started", lambda row: Text(format_short_time(row.job.started_at)))
    liveness = Column(
        "liveness",
        lambda row: Text(str(row.verdict.liveness), style=LIVENESS_STYLES.get(row.verdict.liveness, "")),
    )
    why = Flexible("why", lambda row: Text(row.verdict.reason), REASON_MIN_WIDTH, wrap=True)
    return WidthAware(
        lambda width: _reasons_table(
            rows, lambda row: row.job, [(started, liveness), (liveness,)], why, title=title, width=width
        )
    )


def stacked(*renderables: Any) -> Group:
    """Renderables one under the other."""
    return Group(*renderables)


def to_text(renderable: Any, width: int | None = None) -> str:
    """Render to plain text (no colour codes), for ``repr`` in consoles and logs."""
    width = width or shutil.get_terminal_size((160, 24)).columns
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False)
    console.print(renderable)
    return buffer.getvalue().rstrip("\n")
