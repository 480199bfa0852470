from __future__ import annotations

from sidekiq_supervisor.domain.figures import (
    OTHER_CLASS,
    busiest,
    class_label,
    completed_run,
    oldest_age_seconds,
    started_before,
)
from sidekiq_supervisor.domain.model import Timeline

S = 1_000_000


def test_the_busiest_classes_are_those_with_the_most_jobs_ties_going_to_the_first_name():
    counts = {"Mailer": 50, "Import": 7, "Billing": 7, "Export": 1}

    assert busiest(counts, 2) == {"Mailer", "Billing"}
    assert busiest(counts, 10) == set(counts)
    assert busiest(counts, 0) == frozenset()


def test_a_class_not_kept_is_other():
    assert class_label("Mailer", frozenset({"Mailer"})) == "Mailer"
    assert class_label("Import", frozenset({"Mailer"})) == OTHER_CLASS


def test_a_run_counts_when_the_job_becomes_complete_with_both_times():
    started = Timeline(queued_at=0, started_at=10 * S, attempts=1)
    complete = Timeline(queued_at=0, started_at=10 * S, completed_at=12 * S, attempts=1)

    assert completed_run(started, complete) == 2 * S
    assert completed_run(Timeline(), complete) == 2 * S  # both reports in one batch


def test_a_run_counts_once():
    complete = Timeline(queued_at=0, started_at=10 * S, completed_at=12 * S, attempts=1)
    late_queued = Timeline(queued_at=-5 * S, started_at=10 * S, completed_at=12 * S, attempts=1)

    assert completed_run(complete, late_queued) is None
    assert completed_run(complete, complete) is None


def test_a_complete_that_came_before_its_start_counts_when_the_start_arrives():
    complete_alone = Timeline(completed_at=12 * S)
    both = Timeline(started_at=10 * S, completed_at=12 * S, attempts=1)

    assert completed_run(Timeline(), complete_alone) is None  # no start: no duration yet
    assert completed_run(complete_alone, both) == 2 * S


def test_a_new_run_counts_again_and_an_uncompleted_one_not_at_all():
    first = Timeline(started_at=10 * S, completed_at=12 * S, attempts=1)
    started_again = Timeline(started_at=20 * S, completed_at=12 * S, attempts=2)
    second = Timeline(started_at=20 * S, completed_at=25 * S, attempts=2)

    assert completed_run(first, started_again) is None
    assert completed_run(started_again, second) == 5 * S


def test_ages_of_the_uncompleted_jobs():
    starts = [100 * S, 400 * S, 900 * S]

    assert oldest_age_seconds(starts, 1000 * S) == 900
    assert oldest_age_seconds([], 1000 * S) == 0
    assert started_before(starts, 400 * S) == 1
    assert started_before(starts, 401 * S) == 2
    assert started_before([], 401 * S) == 0
