"""Printing answers: Rich tables for people, a streamed JSON array for scripts.

Every answer streams: the jobs come a page at a time (``Ledger.iterate``) and go out as they
come, so printing a million jobs takes no more memory than printing fifty.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime, timedelta
from itertools import chain, islice
from typing import Any, TextIO

import orjson
import typer
from rich.console import Console
from rich.progress import Progress

from sidekiq_supervisor import render
from sidekiq_supervisor.domain.durations import format_duration
from sidekiq_supervisor.domain.model import datetime_from_micros
from sidekiq_supervisor.domain.recovery import Recovery
from sidekiq_supervisor.services.alerting import AlertsView
from sidekiq_supervisor.services.liveness import LivenessReport
from sidekiq_supervisor.services.restart import RestartFailed, RestartOutcome, RestartReport, outcome_lines
from sidekiq_supervisor.services.results import DurationList, Job, JobDuration, JobList

# Streams shorter than this print without a progress bar.
PROGRESS_THRESHOLD = 10_000
# Rich lays a whole table out in memory before printing it, at about a millisecond a row: a
# longer answer is printed as a plain-text table instead, a line at a time.
RICH_TABLE_ROWS = 1000
# jid, class and queue come from reports: see ``render.CONTROL_CHARACTERS``.
_CONTROL_CHARACTERS = render.CONTROL_CHARACTERS


def _default(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, datetime):  # only on the standard library's path (bignums)
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """JSON for scripts: datetimes in RFC 3339, durations in seconds, integers exact at any size."""
    try:
        return orjson.dumps(value, default=_default)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits in the arguments
        return json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":")).encode()


def show(answer: JobList, *, limit: int, as_json: bool, exact: bool = False) -> None:
    """Print an answer: the newest ``limit`` jobs (0: all of them); a duration answer's summary
    from the roll-ups, or computed from the jobs when ``exact``."""
    if as_json:
        _stream_json(answer, limit)
        return
    console = Console()
    if limit and limit <= RICH_TABLE_ROWS:
        rows = answer.first(limit)
        title, total = answer.title, len(rows)
        if len(rows) == limit:
            # Counting millions of jobs takes seconds on PostgreSQL: past its budget, an estimate.
            counted = answer.estimated_count()
            title, total = (f"{title} (total estimated)" if counted.estimated else title), counted.value
        console.print(render.job_table(rows, title=title, total=total))
    else:
        _print_table(console, answer, limit)
    if isinstance(answer, DurationList):
        console.print(render.summary_table(answer.summary(exact=exact)))


def _print_table(console: Console, answer: JobList, limit: int) -> None:
    """A Rich table if the answer has at most ``RICH_TABLE_ROWS`` rows, else a streamed text one."""
    rows: Iterator[Job] = iter(answer) if not limit else islice(answer, limit)
    head = list(islice(rows, RICH_TABLE_ROWS + 1))
    if len(head) <= RICH_TABLE_ROWS:
        console.print(render.job_table(head, title=answer.title, total=len(head)))
        return
    out = sys.stdout
    out.write(f"{answer.title}\n")
    shown = _write_text_table(out, head, chain(head, rows))
    total = answer.count() if limit and shown == limit else shown
    caption = f"{shown:,} jobs" if total == shown else f"showing the newest {shown:,} of {total:,} jobs"
    out.write(f"{caption}\n")
    out.flush()


def _write_text_table(out: TextIO, sizing: Sequence[Job], jobs: Iterable[Job]) -> int:
    """Write ``jobs`` to ``out`` as a plain-text table, a line each; the number written.

    The columns are those of ``render.job_table``, as wide as their widest cell among
    ``sizing`` (the first jobs): a later, longer cell widens its own row, never is cut.
    """
    with_duration = bool(sizing) and hasattr(sizing[0], "duration")
    headers = ["jid", "class", "queue", "arguments", "status", "queued", "started", "completed", "tries"]
    if with_duration:
        headers.append("duration")
    right = {headers.index("tries"), len(headers) - 1} if with_duration else {headers.index("tries")}
    widths = [len(header) for header in headers]
    for job in sizing:
        widths = [
            max(width, len(cell)) for width, cell in zip(widths, _cells(job, with_duration), strict=True)
        ]

    def line(cells: list[str]) -> str:
        padded = (
            cell.rjust(width) if index in right else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )
        return "  ".join(padded).rstrip() + "\n"

    out.write(line(headers))
    out.write(line(["-" * width for width in widths]))
    written = 0
    for job in jobs:
        out.write(line(_cells(job, with_duration)))
        written += 1
    return written


def _cells(job: Job, with_duration: bool) -> list[str]:
    cells = [
        job.jid.translate(_CONTROL_CHARACTERS),
        job.job_class.translate(_CONTROL_CHARACTERS),
        job.queue.translate(_CONTROL_CHARACTERS),
        render.format_arguments(job.arguments),
        str(job.status),
        render.format_time(job.queued_at),
        render.format_time(job.started_at),
        render.format_time(job.completed_at),
        str(job.attempts),
    ]
    if with_duration:  # the answer to a duration question: its jobs are JobDurations
        cells.append(format_duration(job.duration if isinstance(job, JobDuration) else None))
    return cells


def _stream_json(answer: JobList, limit: int) -> None:
    out = sys.stdout.buffer
    rows = iter(answer) if not limit else islice(answer, limit)
    err = Console(stderr=True)
    # The total only feeds the progress bar: no count query when there is no terminal to show it.
    total = 0
    if err.is_terminal:
        total = answer.count() if not limit else min(limit, answer.count())
    with Progress(
        console=err, transient=True, disable=total < PROGRESS_THRESHOLD or not err.is_terminal
    ) as bar:
        task = bar.add_task("jobs", total=total)
        out.write(b"[")
        for index, job in enumerate(rows):
            out.write(b"\n" if index == 0 else b",\n")
            out.write(dumps(job))
            bar.advance(task)
        out.write(b"\n]\n")
    out.flush()


def show_liveness(report: LivenessReport, as_json: bool) -> None:
    """Print uncompleted jobs with their liveness."""
    if as_json:
        sys.stdout.buffer.write(dumps(report) + b"\n")
        return
    Console().print(report)


def show_restart(outcomes: Iterable[RestartOutcome], dry_run: bool) -> None:
    """Print a restart's outcomes: a table when they are few, a line per job as it goes when many.

    On ``RestartFailed`` what was done so far is printed before the failure propagates.
    """
    console = Console()
    report = RestartReport(dry_run=dry_run)
    stream = iter(outcomes)
    try:
        for outcome in islice(stream, RICH_TABLE_ROWS):
            report.add(outcome)
        first = next(stream, None)
    except RestartFailed as exc:
        exc.report = report
        raise
    if first is None:
        console.print(report)
        return
    verb = "would restart" if dry_run else "restarted"
    counts = {"restarted": 0, "skipped": 0}
    try:
        for outcome in chain(report.restarted, report.skipped, [first], stream):
            counts[outcome.kind] += 1
            detail = (outcome.new_jid if outcome.taken else outcome.reason) or ""
            cells = (outcome.original.jid, outcome.original.job_class, verb if outcome.taken else "skipped")
            print("  ".join((*cells, detail)).translate(_CONTROL_CHARACTERS))
    finally:
        print(f"{verb} {counts['restarted']:,}, skipped {counts['skipped']:,}")


def stream_restart_lines(outcomes: Iterable[RestartOutcome], dry_run: bool) -> None:
    """JSON lines for scripts, each written as its job is decided (see ``outcome_lines``)."""
    out = sys.stdout.buffer
    for line in outcome_lines(outcomes, dry_run):
        out.write(dumps(line) + b"\n")
        out.flush()
        if "error" in line:
            raise SystemExit(1)


def warn(message: str) -> None:
    """A warning on stderr that stands out from the server's log lines."""
    Console(stderr=True).print(f"[bold yellow]WARNING:[/] {message}", highlight=False)


def show_recoveries(recoveries: Sequence[Recovery], as_json: bool) -> None:
    """Automatic recovery's acts, newest first: a line each, or JSON lines."""
    if not recoveries:
        if not as_json:
            typer.echo("automatic recovery has done nothing yet")
        return
    for recovery in recoveries:
        when = render.format_time(datetime_from_micros(recovery.at))
        job = f"{recovery.jid} {recovery.job_class or ''}"
        if as_json:
            typer.echo(orjson.dumps(recovery.document()).decode())
        elif recovery.quarantined:
            typer.echo(f"{when}  quarantined  {job}: {recovery.reason}")
        else:
            typer.echo(f"{when}  recovered    {job} as {recovery.new_jid} "
                       f"(attempt {recovery.attempt}): {recovery.reason}")  # fmt: skip


def show_alerts(view: AlertsView, as_json: bool) -> None:
    """The alerts: open ones, the history, and each notification with its deliveries; or JSON."""
    if as_json:
        sys.stdout.buffer.write(dumps(view.document()) + b"\n")
        return

    def when(micros: int | None) -> str:
        return render.format_time(datetime_from_micros(micros))

    def clean(text: str) -> str:
        return text.translate(_CONTROL_CHARACTERS)  # summaries name classes and processes from reports

    targets = ", ".join(view.targets) or "none (SUPERVISOR_NOTIFY is empty)"
    typer.echo(f"notification URLs: {targets}")
    typer.echo(f"open alerts: {len(view.open)}")
    for alert in view.open:
        typer.echo(f"  {when(alert.opened_at)}  FIRING  {clean(alert.title)}: {clean(alert.summary)}")
    typer.echo("history, newest first:" if view.history else "no alert yet")
    for alert in view.history:
        state = "open" if alert.resolved_at is None else f"resolved {when(alert.resolved_at)}"
        typer.echo(f"  {when(alert.opened_at)}  {clean(alert.title)} ({state})")
    typer.echo("notifications, newest first:" if view.messages else "no notification yet")
    for message in view.messages:
        typer.echo(
            f"  {when(message.created_at)}  #{message.id} {message.status:<11}  {clean(message.title)}"
        )
        for delivery in message.deliveries:
            error = f": {clean(delivery.error)}" if delivery.error else ""
            typer.echo(f"      {delivery.target}  {delivery.status.value}, {delivery.attempts} tries{error}")
