"""The rules behind the Prometheus figures, without I/O: which job classes get a label of their own,
which run a write completed, and how long uncompleted jobs have been running.

Per-class figures carry a ``class`` label. Job classes come from clients, so their number is
bounded: the busiest classes keep their names and every other class is counted under ``other``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence

from sidekiq_supervisor.domain.model import JobStatus, Micros, Timeline
from sidekiq_supervisor.domain.status import status_of

OTHER_CLASS = "other"


def busiest(counts: Mapping[str, int], limit: int) -> frozenset[str]:
    """The ``limit`` classes with the most jobs in ``counts`` (a tie goes to the first name)."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return frozenset(name for name, _count in ranked[: max(0, limit)])


def class_label(job_class: str, kept: frozenset[str]) -> str:
    """The ``class`` label of a job: its class when kept, else ``other``."""
    return job_class if job_class in kept else OTHER_CLASS


def completed_run(before: Timeline, after: Timeline) -> Micros | None:
    """The started→complete duration of the run a write completed, or None when it completed none.

    ``before`` and ``after`` are the job's timeline on either side of the write. A run counts once:
    when the job becomes complete with both times known, or completes a new run (a later start and
    completion). A ``complete`` that arrived before its ``started`` counts when the start arrives.
    """
    started, completed = after.started_at, after.completed_at
    if status_of(after) is not JobStatus.COMPLETE or started is None or completed is None:
        return None
    if (before.started_at, before.completed_at) == (started, completed):
        return None
    return completed - started


def oldest_age_seconds(started: Sequence[Micros], now: Micros) -> float:
    """Seconds since the oldest of ``started`` (sorted, epoch micros); 0 when there is none."""
    return max(0.0, (now - started[0]) / 1_000_000) if started else 0.0


def started_before(started: Sequence[Micros], cutoff: Micros) -> int:
    """How many of ``started`` (sorted) are earlier than ``cutoff``."""
    return bisect_left(started, cutoff)
