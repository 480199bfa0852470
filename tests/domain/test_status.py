"""Status rules: how a job's reports, in any arrival order, fold into its timeline and status."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sidekiq_supervisor.domain.model import EventKind, JobStatus, Timeline
from sidekiq_supervisor.domain.status import apply_event, fold_events, status_of

Q, S, C = EventKind.QUEUED, EventKind.STARTED, EventKind.COMPLETE

# Event sequences in arrival order, with the timeline and status they must fold into.
CASES = [
    pytest.param([(Q, 100)], Timeline(100, None, None, 0), JobStatus.QUEUED, id="queued-only"),
    pytest.param([(Q, 100), (S, 200)], Timeline(100, 200, None, 1), JobStatus.STARTED, id="queued-started"),
    pytest.param(
        [(Q, 100), (S, 200), (C, 300)],
        Timeline(100, 200, 300, 1),
        JobStatus.COMPLETE,
        id="queued-started-complete",
    ),
    pytest.param(
        [(S, 200), (Q, 100)],
        Timeline(100, 200, None, 1),
        JobStatus.STARTED,
        id="started-arrives-before-queued",
    ),
    pytest.param(
        [(S, 200), (Q, 300)],
        Timeline(300, 200, None, 1),
        JobStatus.STARTED,
        id="late-queued-after-started",
    ),
    pytest.param(
        [(S, 200), (C, 300), (Q, 400)],
        Timeline(400, 200, 300, 1),
        JobStatus.COMPLETE,
        id="late-queued-after-complete",
    ),
    pytest.param(
        [(Q, 100), (C, 300), (S, 200)],
        Timeline(100, 200, 300, 1),
        JobStatus.COMPLETE,
        id="complete-arrives-before-its-started",
    ),
    pytest.param(
        [(Q, 100), (S, 200), (S, 250), (C, 300)],
        Timeline(100, 250, 300, 2),
        JobStatus.COMPLETE,
        id="sidekiq-retry-started-twice-then-complete",
    ),
    pytest.param(
        [(Q, 100), (S, 200), (C, 300), (S, 400)],
        Timeline(100, 400, 300, 2),
        JobStatus.STARTED,
        id="start-after-completion-is-a-new-run",
    ),
    pytest.param(
        [(Q, 100), (S, 200), (C, 200)],
        Timeline(100, 200, 200, 1),
        JobStatus.COMPLETE,
        id="started-and-complete-at-the-same-instant",
    ),
    pytest.param(
        [(Q, 100), (C, 300)],
        Timeline(100, None, 300, 0),
        JobStatus.COMPLETE,
        id="complete-without-started",
    ),
]


@pytest.mark.parametrize(("events", "timeline", "status"), CASES)
def test_events_in_arrival_order_fold_into_the_expected_timeline_and_status(events, timeline, status):
    folded = fold_events(events)
    assert folded == timeline
    assert status_of(folded) is status


def test_a_late_queued_never_moves_a_started_job_back():
    started = fold_events([(S, 200)])
    assert status_of(apply_event(started, Q, 300)) is JobStatus.STARTED


def test_a_late_queued_never_moves_a_complete_job_back():
    complete = fold_events([(S, 200), (C, 300)])
    assert status_of(apply_event(complete, Q, 400)) is JobStatus.COMPLETE


def test_a_complete_arriving_before_its_started_still_yields_complete_with_both_times():
    timeline = fold_events([(C, 300), (S, 200)])
    assert status_of(timeline) is JobStatus.COMPLETE
    assert (timeline.started_at, timeline.completed_at, timeline.attempts) == (200, 300, 1)


def test_folding_onto_a_start_timeline_continues_from_it():
    start = fold_events([(Q, 100), (S, 200)])
    assert fold_events([(C, 300)], start) == Timeline(100, 200, 300, 1)


def test_a_restarted_event_leaves_the_timeline_unchanged():
    timeline = fold_events([(Q, 100), (S, 200)])
    assert apply_event(timeline, EventKind.RESTARTED, 300) == timeline


# --- properties -------------------------------------------------------------------------------------

kinds = st.sampled_from([Q, S, C])
event = st.tuples(kinds, st.integers(min_value=0, max_value=1_000))
# Distinct events (the store drops exact duplicates), in a fixed order so permutations are reproducible.
distinct_events = st.sets(event, max_size=10).map(lambda events: sorted(events, key=lambda e: (e[0], e[1])))


@given(st.data(), distinct_events)
def test_any_arrival_order_of_the_same_events_folds_into_the_same_timeline(data, events):
    shuffled = data.draw(st.permutations(events), label="arrival order")
    assert fold_events(shuffled) == fold_events(events)


@given(distinct_events)
def test_the_status_is_never_queued_once_a_started_or_complete_event_exists(events):
    assume(any(kind is not Q for kind, _ in events))
    assert status_of(fold_events(events)) is not JobStatus.QUEUED


@given(distinct_events)
def test_queued_at_is_the_earliest_queued_time(events):
    queued_times = [at for kind, at in events if kind is Q]
    assert fold_events(events).queued_at == (min(queued_times) if queued_times else None)


@given(distinct_events)
def test_attempts_is_the_number_of_distinct_started_events(events):
    assert fold_events(events).attempts == sum(1 for kind, _ in events if kind is S)


@given(distinct_events, st.integers(min_value=0, max_value=1_000))
def test_adding_a_queued_event_never_changes_the_status_of_a_started_or_complete_job(events, queued_at):
    assume((Q, queued_at) not in events)
    timeline = fold_events(events)
    assume(status_of(timeline) is not JobStatus.QUEUED)
    assert status_of(apply_event(timeline, Q, queued_at)) is status_of(timeline)
