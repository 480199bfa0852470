"""Tables read well at 80 columns and use the width they have: names whole, arguments cut."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sidekiq_supervisor import render
from sidekiq_supervisor.domain.liveness import Liveness, Verdict
from sidekiq_supervisor.domain.model import JobStatus
from sidekiq_supervisor.services.liveness import JobLiveness, LivenessReport
from sidekiq_supervisor.services.restart import RestartOutcome, RestartReport
from sidekiq_supervisor.services.results import Job, JobDuration

NOW = datetime(2026, 12, 4, 1, 2, 3, tzinfo=UTC)
WIDTHS = [80, 100, 120, 160, 200]
# The class and queue names a Rails app really has: ActiveJob's wrapper is 52 characters.
LONG_CLASS = "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"
LONG_QUEUE = "mailers_low_priority"
CLASS = "Billing::InvoiceReminderJob"
NOTE = "x" * 200
ARGUMENTS = [1, "alice@example.com", {"note": NOTE}]
SHORT = [
    Job("0123456789abcdef01234567", CLASS, "mailers", ARGUMENTS, JobStatus.COMPLETE, NOW, NOW, NOW, 1, None),
    Job("abcdef0123456789abcdef01", "HardWorker", "default", [2], JobStatus.STARTED, NOW, NOW, None, 2, None),
]
LONG = [
    Job(
        "fedcba9876543210fedcba98",
        LONG_CLASS,
        LONG_QUEUE,
        ARGUMENTS,
        JobStatus.COMPLETE,
        NOW,
        NOW,
        NOW,
        1,
        None,
    ),
    *SHORT,
]
REASON = "running: process web-1:42:abc is running it (last heartbeat 4 s ago; taken for gone at 60 s)"


def lines_of(renderable, width: int) -> list[str]:
    """The rendered lines, none wider than ``width``."""
    lines = render.to_text(renderable, width=width).splitlines()
    assert max(len(line) for line in lines) <= width
    return lines


def assert_whole_on_a_line(lines: list[str], *names: str) -> None:
    text = "\n".join(lines)
    for name in names:
        assert any(name in line for line in lines), f"{name!r} is not whole on any line of:\n{text}"


@pytest.mark.parametrize("width", WIDTHS)
def test_short_names_stay_side_by_side_and_the_arguments_are_cut(width):
    lines = lines_of(render.job_table(SHORT, title="jobs"), width)
    text = "\n".join(lines)

    assert any(CLASS in line and "mailers" in line for line in lines), text
    assert any("HardWorker" in line and "default" in line for line in lines), text
    assert NOTE not in text  # the long argument is cut, with an ellipsis
    assert '[1,"alice@' in text and "…" in text


@pytest.mark.parametrize("width", WIDTHS)
def test_long_class_and_queue_names_are_never_cut_whatever_the_width(width):
    lines = lines_of(render.job_table(LONG, title="jobs"), width)
    text = "\n".join(lines)

    assert_whole_on_a_line(lines, LONG_CLASS, LONG_QUEUE, CLASS, "mailers", "HardWorker", "default")
    assert NOTE not in text and "…" in text
    assert all(status in text for status in ("complete", "started"))
    assert "abcdef012345" in text  # every job names its jid, shortened at most


@pytest.mark.parametrize("width", WIDTHS)
def test_duration_tables_keep_the_names_whole_and_show_each_duration(width):
    rows = [
        JobDuration(
            **{name: getattr(job, name) for name in Job.__slots__}, duration=timedelta(seconds=seconds)
        )
        for job, seconds in zip(LONG, (0.84, 12.3, 245), strict=True)
    ]
    lines = lines_of(render.job_table(rows, title="durations"), width)
    text = "\n".join(lines)

    assert_whole_on_a_line(lines, LONG_CLASS, LONG_QUEUE, CLASS, "HardWorker")
    assert all(duration in text for duration in ("840 ms", "12.3 s", "4 min 05 s")), text


def test_wider_terminals_show_more_of_each_job():
    narrow = render.to_text(render.job_table(LONG, title="jobs"), width=80)
    wide = render.to_text(render.job_table(LONG, title="jobs"), width=200)

    assert "0123456789abcdef01234567" in wide and "tries" in wide
    assert all(header in wide for header in ("queued", "started", "completed"))
    assert len(max(narrow.split(), key=len)) < len(max(wide.split(), key=len))
    assert len("".join(narrow.split())) < len("".join(wide.split()))


def test_names_cannot_drive_the_terminal_or_break_a_row_and_arguments_are_not_markup():
    job = Job(
        "j\x1b[2J",
        "Evil\nClass",
        "q\x07",
        ["[bold]not markup[/bold]"],
        JobStatus.QUEUED,
        NOW,
        None,
        None,
        0,
        None,
    )

    text = render.to_text(render.job_table([job], title="jobs"), width=120)

    assert "\x1b" not in text and "\x07" not in text
    assert "Evil\N{REPLACEMENT CHARACTER}Class" in text
    assert "[bold]not markup[/bold]" in text


@pytest.mark.parametrize("width", WIDTHS)
def test_restart_and_liveness_tables_keep_names_whole_and_say_why(width):
    report = RestartReport(dry_run=False)
    report.add(RestartOutcome(LONG[0], "1111111111aaaaaaaaaa2222"))
    report.add(RestartOutcome(LONG[2], None, REASON, taken=False))
    liveness = LivenessReport(
        [JobLiveness(job, Verdict(Liveness.RUNNING, REASON, 56.0)) for job in (LONG[0], LONG[2])]
    )

    for renderable in (report, liveness):
        lines = lines_of(renderable, width)
        text = " ".join(" ".join(lines).split())
        assert_whole_on_a_line(lines, LONG_CLASS, LONG_QUEUE, "HardWorker", "default")
        assert "taken for gone at 60 s" in text, text  # the reason wraps, whole
    assert "1111111111aaaaaaaaaa2222" in "\n".join(lines_of(report, width))
