"""Which uncompleted jobs are still alive in Sidekiq: running, retrying, orphaned or unknown."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from sidekiq_supervisor import render
from sidekiq_supervisor.domain.liveness import SidekiqSnapshot, Verdict, classify, worker_identity
from sidekiq_supervisor.domain.model import Micros
from sidekiq_supervisor.services.results import Job
from sidekiq_supervisor.sidekiq_redis.snapshot import SidekiqReader
from sidekiq_supervisor.store.records import StoredJob


class SidekiqUnavailable(RuntimeError):
    """Sidekiq's Redis could not be read, so no job's liveness can be known."""


# What every question that needs Sidekiq answers when REDIS_URL is empty.
NOT_CONFIGURED = "no Sidekiq Redis is configured (REDIS_URL is not set)"


@dataclass(frozen=True, slots=True)
class JobLiveness:
    """An uncompleted job and where it stands in Sidekiq."""

    job: Job
    verdict: Verdict


class LivenessReport(list[JobLiveness]):
    """Uncompleted jobs with their liveness; prints as a table."""

    def __rich__(self) -> Any:
        return render.liveness_table(self)

    def __repr__(self) -> str:
        return render.to_text(self)


@dataclass(frozen=True, slots=True)
class LivenessPage:
    """One page of uncompleted jobs with their liveness, newest first; ``next_cursor`` fetches the
    following page, if any."""

    report: LivenessReport
    next_cursor: int | None


class LivenessChecker:
    """Classifies uncompleted jobs against one snapshot of Sidekiq's Redis."""

    def __init__(
        self,
        reader: SidekiqReader | None,
        *,
        stale_after: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._reader = reader
        self._stale_after = stale_after
        self._clock = clock

    def snapshot(self) -> SidekiqSnapshot:
        """Sidekiq's processes, running jobs and retry sets, now."""
        if self._reader is None:
            raise SidekiqUnavailable(NOT_CONFIGURED)
        try:
            return self._reader.snapshot(now=self._clock())
        except redis.RedisError as exc:
            raise SidekiqUnavailable(f"Sidekiq's Redis cannot be read: {exc}") from exc

    def verdict(self, stored: StoredJob, snapshot: SidekiqSnapshot) -> Verdict:
        """Where one uncompleted job stands, as of ``snapshot``."""
        return self.verdict_of(stored.jid, stored.worker, stored.timeline.started_at, snapshot)

    def verdict_of(
        self, jid: str, worker: str | None, started_at: Micros | None, snapshot: SidekiqSnapshot
    ) -> Verdict:
        """Where the uncompleted job ``jid`` stands, from its worker (JSON text) and latest start."""
        return classify(
            jid,
            worker_identity(orjson.loads(worker) if worker else None, snapshot),
            None if started_at is None else started_at / 1_000_000,
            snapshot,
            self._stale_after,
        )

    def classify_all(self, jobs: Iterable[StoredJob]) -> Iterator[JobLiveness]:
        """Each job with its verdict, against one snapshot taken first."""
        snapshot = self.snapshot()
        for stored in jobs:
            yield JobLiveness(Job.from_stored(stored), self.verdict(stored, snapshot))
