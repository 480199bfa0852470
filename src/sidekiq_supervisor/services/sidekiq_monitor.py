"""The façade the ``/sidekiq`` monitor pages call: reads and actions on Sidekiq's Redis, typed.

Every method talks to Redis once per call and turns any Redis failure into ``SidekiqUnavailable``,
so a page has one exception to catch. Sizes and periods are clamped here, never trusted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import redis

from sidekiq_supervisor.services.liveness import NOT_CONFIGURED, SidekiqUnavailable
from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.sidekiq_redis import (
    connection,
    keys,
    metrics,
    processes,
    profiles,
    queues,
    set_actions,
    sets,
    stats,
)
from sidekiq_supervisor.sidekiq_redis.jobs import JobRecord, error_backtrace, extra_items
from sidekiq_supervisor.sidekiq_redis.metrics import (
    HISTOGRAM_LABELS,
    ClassDetail,
    ClassMetrics,
    MetricsBucket,
    MetricsResult,
)
from sidekiq_supervisor.sidekiq_redis.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Page,
    clamp_page,
    slice_page,
)
from sidekiq_supervisor.sidekiq_redis.processes import ProcessInfo, Signal, SignalOutcome, Work
from sidekiq_supervisor.sidekiq_redis.profiles import ProfileRecord
from sidekiq_supervisor.sidekiq_redis.queues import InvalidQueueName, QueueOrder, QueueSummary
from sidekiq_supervisor.sidekiq_redis.sets import DEFAULT_SORT, JobSet, SetEntry, Sort
from sidekiq_supervisor.sidekiq_redis.stats import DailyStat, RedisInfo, Stats

# The records and enums pages need, re-exported: the web layer may import services, not sidekiq_redis.
__all__ = [
    "HISTOGRAM_LABELS",
    "MAX_PAGE_SIZE",
    "ClassDetail",
    "ClassMetrics",
    "DailyStat",
    "InvalidQueueName",
    "JobRecord",
    "JobSet",
    "MetricsBucket",
    "MetricsResult",
    "Page",
    "ProcessInfo",
    "ProfileRecord",
    "QueueOrder",
    "QueueSummary",
    "RedisInfo",
    "SetEntry",
    "SidekiqMonitor",
    "SidekiqUnavailable",
    "SignalOutcome",
    "Sort",
    "Stats",
    "Work",
    "error_backtrace",
    "extra_items",
]

MAX_SEARCH_LENGTH = 200


class SidekiqMonitor:
    """Sidekiq's Web UI data and actions, for Sidekiq 6, 7 and 8, on one Redis database."""

    def __init__(
        self,
        client: redis.Redis | None,
        *,
        sidekiq_version: int = 7,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._default_major = sidekiq_version
        self._clock = clock
        self._actions = None if client is None else set_actions.SetActions(client)

    @classmethod
    def from_url(
        cls, redis_url: str | None, *, sidekiq_version: int = 7, clock: Callable[[], float] = time.time
    ) -> SidekiqMonitor:
        """A monitor on the Redis at ``redis_url``; with no URL every call raises ``SidekiqUnavailable``."""
        try:
            client = connection.connect(redis_url)
        except ValueError as exc:
            raise SidekiqUnavailable(f"the Sidekiq Redis URL is not valid: {exc}") from exc
        return cls(client, sidekiq_version=sidekiq_version, clock=clock)

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Callable[[], float] = time.time) -> SidekiqMonitor:
        """A monitor on ``REDIS_URL``, writing timestamps for ``sidekiq_version`` when no process says."""
        return cls.from_url(settings.redis_url, sidekiq_version=settings.sidekiq_version, clock=clock)

    def close(self) -> None:
        """Release the connection pool."""
        if self._client is not None:
            self._client.close()

    def ping(self) -> None:
        """One cheap read (the default queue's length, as Sidekiq's ``HEAD /``): raises
        ``SidekiqUnavailable`` unless Redis answers."""
        with self._redis() as client:
            client.llen(keys.queue("default"))

    def stats(self) -> Stats:
        """The summary bar: processed, failed, busy, enqueued, set sizes, default queue latency."""
        with self._redis() as client:
            return stats.read_stats(client, self._clock())

    def history(self, days: int = 30) -> tuple[DailyStat, ...]:
        """Processed/failed per UTC day, today first, ``days`` (1 to 5 years) days back."""
        with self._redis() as client:
            return stats.read_history(client, days, self._clock())

    def redis_info(self) -> RedisInfo:
        """The Redis server's version, uptime in days, connected clients and memory."""
        with self._redis() as client:
            return stats.read_redis_info(client)

    def processes(self) -> tuple[ProcessInfo, ...]:
        """Every live Sidekiq process, by identity."""
        with self._redis() as client:
            return processes.read_processes(client)

    def work(self, page: int = 1, size: int = 100) -> Page[Work]:
        """A page of the jobs running now, the longest running first."""
        with self._redis() as client:
            return slice_page(processes.read_work(client), *clamp_page(page, size))

    def quiet(self, identity: str) -> SignalOutcome:
        """Ask one process to stop fetching jobs."""
        with self._redis() as client:
            return processes.send_signal(client, identity, Signal.QUIET)

    def stop(self, identity: str) -> SignalOutcome:
        """Ask one process to shut down."""
        with self._redis() as client:
            return processes.send_signal(client, identity, Signal.STOP)

    def quiet_all(self) -> int:
        """Quiet every live, non-embedded process; how many were signalled."""
        with self._redis() as client:
            return processes.signal_all(client, Signal.QUIET)

    def stop_all(self) -> int:
        """Stop every live, non-embedded process; how many were signalled."""
        with self._redis() as client:
            return processes.signal_all(client, Signal.STOP)

    def queues(self) -> tuple[QueueSummary, ...]:
        """Every queue, by name, with its size and latency."""
        with self._redis() as client:
            return queues.read_queues(client, self._clock())

    def queue_jobs(
        self,
        name: str,
        page: int = 1,
        size: int = DEFAULT_PAGE_SIZE,
        order: QueueOrder = QueueOrder.NEWEST_FIRST,
    ) -> Page[JobRecord]:
        """A page of one queue's waiting jobs; ``InvalidQueueName`` for a name Sidekiq would refuse."""
        with self._redis() as client:
            return queues.read_queue_page(client, name, page=page, size=size, order=order)

    def delete_queue_job(self, name: str, raw: str) -> bool:
        """Delete one waiting job by its exact member; False if it had already gone."""
        with self._redis() as client:
            return queues.delete_queue_job(client, name, raw)

    def clear_queue(self, name: str) -> int:
        """Delete a queue's jobs and the queue itself; how many jobs it held."""
        with self._redis() as client:
            return queues.clear_queue(client, name)

    def set_entries(
        self,
        job_set: JobSet,
        page: int = 1,
        size: int = DEFAULT_PAGE_SIZE,
        sort: Sort | None = None,
        search: str | None = None,
    ) -> Page[SetEntry]:
        """A page of a job set, in Sidekiq's order unless ``sort`` says; with ``search``, only members
        whose raw JSON contains it."""
        sort = sort or DEFAULT_SORT[job_set]
        with self._redis() as client:
            if search:
                return sets.search_set(
                    client, job_set, search[:MAX_SEARCH_LENGTH], page=page, size=size, sort=sort
                )
            return sets.read_set_page(client, job_set, page=page, size=size, sort=sort)

    def entries_at(self, job_set: JobSet, key: str) -> tuple[SetEntry, ...]:
        """The entries a ``<score>-<jid>`` key of Sidekiq's URLs names (usually one; none once it has
        gone, or for a key that is not one)."""
        parsed = sets.parse_entry_key(key)
        if parsed is None:
            return ()
        with self._redis() as client:
            return sets.fetch_entries(client, job_set, *parsed)

    def retry_now(self, job_set: JobSet, members: Sequence[str]) -> int:
        """Sidekiq's "Retry Now" for these retry- or dead-set members: pushed to their queues with
        ``retry_count`` lowered by one; how many moved (a second click finds nothing to move)."""
        _require(job_set, (JobSet.RETRY, JobSet.DEAD), "retry now")
        return self._enqueue(job_set, members, decrement=True)

    def add_to_queue(self, members: Sequence[str]) -> int:
        """Sidekiq's "Add to Queue" for these scheduled members: pushed unchanged; how many moved."""
        return self._enqueue(JobSet.SCHEDULE, members, decrement=False)

    def delete_entries(self, job_set: JobSet, members: Sequence[str]) -> int:
        """Delete these exact members; how many were still there."""
        with self._redis():
            return self._set_actions().delete(job_set, members)

    def kill(self, job_set: JobSet, members: Sequence[str]) -> int:
        """Move these retry- or schedule-set members to the Dead set (trimmed as Sidekiq trims it)."""
        _require(job_set, (JobSet.RETRY, JobSet.SCHEDULE), "kill")
        with self._redis():
            return self._set_actions().kill(job_set, members, now=self._clock())

    def retry_all(self, job_set: JobSet) -> int:
        """Sidekiq's "Retry All" of the retry or dead set; how many moved."""
        _require(job_set, (JobSet.RETRY, JobSet.DEAD), "retry now")
        return self._enqueue_all(job_set, decrement=True)

    def add_all_to_queue(self) -> int:
        """Sidekiq's "Add All to Queue" of the scheduled set; how many moved."""
        return self._enqueue_all(JobSet.SCHEDULE, decrement=False)

    def delete_all(self, job_set: JobSet) -> int:
        """Empty a job set; how many members it held."""
        with self._redis():
            return self._set_actions().delete_all(job_set)

    def kill_all(self, job_set: JobSet) -> int:
        """Move the whole retry or schedule set to the Dead set; how many moved."""
        _require(job_set, (JobSet.RETRY, JobSet.SCHEDULE), "kill")
        with self._redis():
            return self._set_actions().kill_all(job_set, now=self._clock())

    def metrics(
        self, minutes: int | None = 60, hours: int | None = None, class_filter: str | None = None
    ) -> MetricsResult:
        """Per-class executions, failures and run time over the last ``minutes`` (1-480) or, from
        Sidekiq 8's rollups, ``hours`` (1-72); empty on Sidekiq 6."""
        with self._redis() as client:
            return metrics.read_metrics(
                client, now=self._clock(), minutes=minutes, hours=hours, class_filter=class_filter
            )

    def class_metrics(self, job_class: str, minutes: int = 60) -> ClassDetail:
        """One class's counts per minute and run-time histogram over the last ``minutes`` (1-480)."""
        with self._redis() as client:
            return metrics.read_class_metrics(client, job_class, now=self._clock(), minutes=minutes)

    def profiles(self) -> tuple[ProfileRecord, ...]:
        """Sidekiq 8's profiles not yet expired, the newest first."""
        with self._redis() as client:
            return profiles.read_profiles(client, self._clock())

    def profile_data(self, key: str) -> bytes | None:
        """A listed profile's data (gzipped JSON), or None if there is no such profile."""
        with self._redis() as client:
            return profiles.read_profile_data(client, key)

    def sidekiq_major(self) -> int:
        """The major version the live processes run (the newest, if mixed), else the configured one."""
        with self._redis() as client:
            major = processes.major_version(processes.read_processes(client))
        return major if major is not None else self._default_major

    @contextmanager
    def _redis(self) -> Iterator[redis.Redis]:
        if self._client is None:
            raise SidekiqUnavailable(NOT_CONFIGURED)
        try:
            yield self._client
        except redis.RedisError as exc:
            raise SidekiqUnavailable(f"Sidekiq's Redis cannot be reached: {exc}") from exc

    def _set_actions(self) -> set_actions.SetActions:
        assert self._actions is not None  # _redis() has refused a monitor without Redis
        return self._actions

    def _enqueue(self, job_set: JobSet, members: Sequence[str], *, decrement: bool) -> int:
        # The server's version decides enqueued_at's unit, so it is read before the push.
        major = self.sidekiq_major()
        with self._redis():
            return self._set_actions().enqueue(
                job_set, members, decrement=decrement, now=self._clock(), sidekiq_major=major
            )

    def _enqueue_all(self, job_set: JobSet, *, decrement: bool) -> int:
        major = self.sidekiq_major()
        with self._redis():
            return self._set_actions().enqueue_all(
                job_set, decrement=decrement, now=self._clock(), sidekiq_major=major
            )


def _require(job_set: JobSet, allowed: tuple[JobSet, ...], action: str) -> None:
    if job_set not in allowed:
        raise ValueError(f"Sidekiq cannot {action} a job of the {job_set.value} set")
