"""How the number of jobs per class, queue and status changes as jobs arrive, move and leave.

The ledger keeps these numbers as it writes (``store.job_counts``), so that the counts of the
lists, the pages and ``/api/v1/stats`` are exact at once, however many jobs it holds. Every write
that creates, moves or deletes a job states the move as a status before and after (``None``: the
job did not exist, or no longer does); the counts add the moves' changes up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

from sidekiq_supervisor.domain.model import JobStatus


class CountKey(NamedTuple):
    """One count: the jobs of a class on a queue that have a status."""

    job_class: str
    queue: str
    status: JobStatus


class Move(NamedTuple):
    """A job of ``job_class`` on ``queue`` went from ``before`` to ``after`` (``None``: absent)."""

    job_class: str
    queue: str
    before: JobStatus | None
    after: JobStatus | None


def count_changes(moves: Iterable[Move]) -> dict[CountKey, int]:
    """What ``moves`` add to each count (non-zero changes only)."""
    changes: Counter[CountKey] = Counter()
    for job_class, queue, before, after in moves:
        if before == after:
            continue
        if before is not None:
            changes[CountKey(job_class, queue, before)] -= 1
        if after is not None:
            changes[CountKey(job_class, queue, after)] += 1
    return {key: change for key, change in changes.items() if change}
