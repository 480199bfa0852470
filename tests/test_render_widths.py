"""Tables read well at 80 columns and use the width they have: names whole, arguments cut."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sidekiq_supervisor import render
from sidekiq_supervisor.domain.liveness import Liveness, Verdict
from sidekiq_supervisor.domain.model import JobStatus
from sidekiq_supervisor.services.liveness import JobLiveness, LivenessReport
from sidekiq_supervisor.services.restart import RestartOutcome, RestartReport
from sidekiq_supervisor.services.results import Job

NOW = datetime(2026, 12, 4, 1, 2, 3, tzinfo=UTC)
CLASS = "Billing::InvoiceReminderJob"
ARGUMENTS = [1, "alice@example.com", {"note": "x" * 200}]
JOBS = [
    Job("0123456789abcdef01234567", CLASS, "mailers", ARGUMENTS, JobStatus.COMPLETE, NOW, NOW, NOW, 1, None),
    Job("abcdef0123456789abcdef01", "HardWorker", "default", [2], JobStatus.STARTED, NOW, NOW, None, 2, None),
]
REASON = "running: process web-1:42:abc is running it (last heartbeat 4 s ago; taken for gone at 60 s)"


def lines_of(renderable, width: int) -> list[str]:
    text = render.to_text(renderable, width=width)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    return lines


@pytest.mark.parametrize("width", [80, 100, 120, 160, 200])
def test_a_job_table_keeps_every_class_and_queue_whole_and_cuts_the_arguments(width):
    lines = lines_of(render.job_table(JOBS, title="jobs"), width)
    text = "\n".join(lines)

    assert any(CLASS in line and "mailers" in line for line in lines), text
    assert any("HardWorker" in line and "default" in line for line in lines), text
    assert "x" * 200 not in text  # the long argument is cut, with an ellipsis
    assert "…" in text


def test_wider_terminals_show_more_of_each_job():
    narrow = render.to_text(render.job_table(JOBS, title="jobs"), width=80)
    wide = render.to_text(render.job_table(JOBS, title="jobs"), width=200)

    assert "0123456789abcdef01234567" in wide and "2026-12-04 01:02:03" in wide and "tries" in wide
    assert len("".join(narrow.split())) < len("".join(wide.split()))


@pytest.mark.parametrize("width", [80, 120, 200])
def test_restart_and_liveness_tables_keep_names_whole_and_say_why(width):
    report = RestartReport(dry_run=False)
    report.add(RestartOutcome(JOBS[0], "fedcba9876543210fedcba98"))
    report.add(RestartOutcome(JOBS[1], None, REASON, taken=False))
    liveness = LivenessReport([JobLiveness(JOBS[1], Verdict(Liveness.RUNNING, REASON, 56.0))])

    for renderable in (report, liveness):
        lines = lines_of(renderable, width)
        text = " ".join(" ".join(lines).split())
        assert any("HardWorker" in line for line in lines)
        assert "taken for gone at 60 s" in text, text
    assert any(CLASS in line for line in lines_of(report, width))
