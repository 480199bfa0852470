"""What moves between statuses add to the counts per class, queue and status."""

from __future__ import annotations

from sidekiq_supervisor.domain.job_counts import CountKey, Move, count_changes
from sidekiq_supervisor.domain.model import JobStatus

QUEUED, STARTED, COMPLETE = JobStatus.QUEUED, JobStatus.STARTED, JobStatus.COMPLETE


def test_a_job_that_arrives_moves_and_leaves_adds_up_to_nothing():
    moves = [
        Move("Mailer", "mail", None, QUEUED),
        Move("Mailer", "mail", QUEUED, STARTED),
        Move("Mailer", "mail", STARTED, COMPLETE),
        Move("Mailer", "mail", COMPLETE, None),
    ]

    assert count_changes(moves) == {}


def test_each_move_takes_one_from_its_status_before_and_adds_one_to_the_one_after():
    moves = [
        Move("Mailer", "mail", None, QUEUED),
        Move("Mailer", "mail", None, QUEUED),
        Move("Mailer", "mail", QUEUED, STARTED),
        Move("Billing", "critical", STARTED, None),
        Move("Billing", "low", None, QUEUED),
    ]

    assert count_changes(moves) == {
        CountKey("Mailer", "mail", QUEUED): 1,
        CountKey("Mailer", "mail", STARTED): 1,
        CountKey("Billing", "critical", STARTED): -1,
        CountKey("Billing", "low", QUEUED): 1,
    }


def test_a_job_that_stays_where_it_was_changes_nothing():
    assert (
        count_changes([Move("Mailer", "mail", COMPLETE, COMPLETE), Move("Mailer", "mail", None, None)]) == {}
    )
