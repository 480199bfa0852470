"""Status rules: how reports, in any arrival order, fold into one job's status.

Every summary in :class:`Timeline` is a min, a max or a count, so folding a set of distinct events
gives the same result whatever order they arrive in. That is what makes out-of-order HTTP
reports safe. Duplicates are recognised by the store (same job, kind and time) and never reach
:func:`apply_event`.
"""

from __future__ import annotations

from collections.abc import Iterable

from sidekiq_supervisor.domain.model import EventKind, JobStatus, Micros, Timeline


def apply_event(timeline: Timeline, kind: EventKind, at: Micros) -> Timeline:
    """Fold one new (never seen before) event into a job's timeline."""
    if kind is EventKind.QUEUED:
        queued_at = at if timeline.queued_at is None else min(timeline.queued_at, at)
        return Timeline(queued_at, timeline.started_at, timeline.completed_at, timeline.attempts)
    if kind is EventKind.STARTED:
        started_at = at if timeline.started_at is None else max(timeline.started_at, at)
        return Timeline(timeline.queued_at, started_at, timeline.completed_at, timeline.attempts + 1)
    if kind is EventKind.COMPLETE:
        completed_at = at if timeline.completed_at is None else max(timeline.completed_at, at)
        return Timeline(timeline.queued_at, timeline.started_at, completed_at, timeline.attempts)
    # A failure leaves the run uncompleted and a restart is history only: neither moves a time.
    return timeline


def fold_events(events: Iterable[tuple[EventKind, Micros]], start: Timeline | None = None) -> Timeline:
    """Fold distinct events into a timeline (from scratch, or onto ``start``)."""
    timeline = start or Timeline()
    for kind, at in events:
        timeline = apply_event(timeline, kind, at)
    return timeline


def status_of(timeline: Timeline) -> JobStatus:
    """The job's current status.

    A completion at or after the latest start means the latest run completed, even if its
    ``complete`` report arrived before its ``started`` one. A start after the latest completion is
    a new run, so the job is uncompleted again. A late ``queued`` never moves a job back.
    """
    started, completed = timeline.started_at, timeline.completed_at
    if completed is not None and (started is None or completed >= started):
        return JobStatus.COMPLETE
    if started is not None:
        return JobStatus.STARTED
    return JobStatus.QUEUED
