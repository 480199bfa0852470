"""Printing answers: Rich tables for people, a streamed JSON array for scripts."""

from __future__ import annotations

import sys
from datetime import timedelta
from itertools import islice
from typing import Any

import orjson
from rich.console import Console
from rich.progress import Progress

from sidekiq_supervisor import render
from sidekiq_supervisor.services.liveness import LivenessReport
from sidekiq_supervisor.services.restart import RestartReport
from sidekiq_supervisor.services.results import DurationList, JobList

# Streams shorter than this print without a progress bar.
PROGRESS_THRESHOLD = 10_000


def _default(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value.total_seconds()
    raise TypeError(f"cannot encode {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """JSON for scripts: datetimes in RFC 3339, durations in seconds."""
    return orjson.dumps(value, default=_default)


def show(answer: JobList, *, limit: int, as_json: bool) -> None:
    """Print an answer: the newest ``limit`` jobs (0: all of them)."""
    if as_json:
        _stream_json(answer, limit)
        return
    console = Console()
    rows = answer.first(limit) if limit else list(answer)
    total = answer.count() if limit and len(rows) == limit else len(rows)
    console.print(render.job_table(rows, title=answer.title, total=total))
    if isinstance(answer, DurationList):
        console.print(render.summary_table(answer.summary()))


def _stream_json(answer: JobList, limit: int) -> None:
    out = sys.stdout.buffer
    total = answer.count() if not limit else min(limit, answer.count())
    rows = iter(answer) if not limit else islice(answer, limit)
    err = Console(stderr=True)
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


def show_restart(report: RestartReport, as_json: bool) -> None:
    """Print what a restart did (or would do)."""
    if as_json:
        sys.stdout.buffer.write(dumps(report) + b"\n")
        return
    Console().print(report)


def warn(message: str) -> None:
    """A warning on stderr that stands out from the server's log lines."""
    Console(stderr=True).print(f"[bold yellow]WARNING:[/] {message}", highlight=False)
