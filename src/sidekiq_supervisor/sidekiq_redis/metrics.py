"""The Metrics page: executions, failures and run time per job class (Sidekiq 7 and later).

Sidekiq's metrics middleware counts, per class and minute, ``<Class>|p`` (executions, failures
included), ``<Class>|f`` (failures) and ``<Class>|ms`` (milliseconds of successful runs only) in one
hash per minute. Sidekiq 7 names it ``j|YYYYMMDD|H:M`` and Sidekiq 8 ``j|YYMMDD|H:MM``, plus 10-minute
rollups ``j|YYMMDD|H:T`` kept three days. Sidekiq 6 writes none, so its result is empty.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from sidekiq_supervisor.sidekiq_redis import keys
from sidekiq_supervisor.sidekiq_redis.jobs import decode_member

# The per-minute hashes live 8 hours and the 10-minute rollups 3 days; Sidekiq caps queries there.
MAX_MINUTES = 480
MAX_HOURS = 72
METRICS = ("p", "f", "ms")
# Sidekiq's run-time histogram: 26 saturating unsigned 16-bit counters (a BITFIELD, big-endian) per
# class and minute; a run falls in the first bucket whose upper bound it is under.
HISTOGRAM_LABELS = (
    "20ms", "30ms", "45ms", "65ms", "100ms", "150ms", "225ms", "335ms", "500ms", "750ms",
    "1.1s", "1.7s", "2.5s", "3.8s", "5.75s", "8.5s", "13s", "20s", "30s", "45s",
    "65s", "100s", "150s", "225s", "335s", "Slow",
)  # fmt: skip
_HISTOGRAM = struct.Struct(f">{len(HISTOGRAM_LABELS)}H")


@dataclass(frozen=True, slots=True)
class MetricsBucket:
    """One class's counts in one bucket (a minute, or ten minutes for an ``hours`` query)."""

    starts_at: float
    executions: int
    failures: int
    total_ms: int


@dataclass(frozen=True, slots=True)
class ClassMetrics:
    """One job class's totals over the queried period, and its buckets oldest first."""

    job_class: str
    executions: int
    failures: int
    total_ms: int
    buckets: tuple[MetricsBucket, ...]

    @property
    def successes(self) -> int:
        """Executions that did not fail."""
        return self.executions - self.failures

    @property
    def average_ms(self) -> float:
        """Mean run time of a successful execution (the only ones timed); 0 with none."""
        return self.total_ms / self.successes if self.successes > 0 else 0.0


@dataclass(frozen=True, slots=True)
class MetricsResult:
    """Per-class metrics of the period ``[starts_at, ends_at]``, the most total run time first."""

    starts_at: float
    ends_at: float
    bucket_seconds: int
    classes: tuple[ClassMetrics, ...]


def read_metrics(
    client: redis.Redis,
    *,
    now: float,
    minutes: int | None = None,
    hours: int | None = None,
    class_filter: str | None = None,
) -> MetricsResult:
    """Metrics of the last ``minutes`` minutes (1-480), or of the last ``hours`` hours (1-72) from
    Sidekiq 8's 10-minute rollups; classes filtered by a case-insensitive substring."""
    if hours is not None:
        count, stride = max(1, min(MAX_HOURS, hours)) * 6, 600
    else:
        count, stride = max(1, min(MAX_MINUTES, minutes if minutes is not None else 60)), 60
    starts = [now - now % stride - index * stride for index in range(count)]
    pipe = client.pipeline(transaction=False)
    for start in starts:
        moment = datetime.fromtimestamp(start, UTC)
        if stride == 600:
            pipe.hgetall(keys.metrics_ten_minutes_v8(moment))
        else:
            # A cluster mid-upgrade writes both layouts for the same minute: they add up.
            pipe.hgetall(keys.metrics_minute_v7(moment))
            pipe.hgetall(keys.metrics_minute_v8(moment))
    replies = pipe.execute()
    per_bucket = len(replies) // count
    needle = class_filter.lower() if class_filter else None
    counts: dict[str, dict[float, dict[str, int]]] = defaultdict(
        lambda: defaultdict(lambda: dict.fromkeys(METRICS, 0))
    )
    for index, start in enumerate(starts):
        for reply in replies[index * per_bucket : (index + 1) * per_bucket]:
            for field, value in reply.items():
                job_class, _, metric = decode_member(field).rpartition("|")
                if metric in METRICS and (needle is None or needle in job_class.lower()):
                    counts[job_class][start][metric] += int(value)
    classes = [_class_metrics(job_class, buckets) for job_class, buckets in counts.items()]
    classes.sort(key=lambda c: (-c.total_ms, c.job_class))
    return MetricsResult(starts_at=starts[-1], ends_at=now, bucket_seconds=stride, classes=tuple(classes))


def _class_metrics(job_class: str, buckets: dict[float, dict[str, int]]) -> ClassMetrics:
    series = [
        MetricsBucket(start, values["p"], values["f"], values["ms"])
        for start, values in sorted(buckets.items())
    ]
    return _class_metrics_of(job_class, series)


@dataclass(frozen=True, slots=True)
class ClassDetail:
    """One class over the last minutes: every minute's counts (zeros included, oldest first) and
    how many successful runs fell in each bucket of ``HISTOGRAM_LABELS``, fastest first."""

    metrics: ClassMetrics
    histogram: tuple[int, ...]
    starts_at: float
    ends_at: float


def read_class_metrics(client: redis.Redis, job_class: str, *, now: float, minutes: int = 60) -> ClassDetail:
    """The per-minute counts and run-time histogram of ``job_class`` over the last ``minutes`` (1-480,
    as long as Sidekiq keeps them), from both Sidekiq 7's and 8's layouts."""
    count = max(1, min(MAX_MINUTES, minutes))
    starts = [now - now % 60 - index * 60 for index in reversed(range(count))]
    fields = [f"{job_class}|{metric}" for metric in METRICS]
    pipe = client.pipeline(transaction=False)
    for start in starts:
        minute = datetime.fromtimestamp(start, UTC)
        pipe.hmget(keys.metrics_minute_v7(minute), fields)
        pipe.hmget(keys.metrics_minute_v8(minute), fields)
        pipe.get(keys.histogram_v7(job_class, minute))
        pipe.get(keys.histogram_v8(job_class, minute))
    replies = pipe.execute()
    buckets, histogram = [], [0] * len(HISTOGRAM_LABELS)
    for index, start in enumerate(starts):
        old, new, old_hist, new_hist = replies[index * 4 : index * 4 + 4]
        values = [_count(a) + _count(b) for a, b in zip(old, new, strict=True)]
        buckets.append(MetricsBucket(start, *values))
        for packed in (old_hist, new_hist):
            for slot, runs in enumerate(_histogram(packed)):
                histogram[slot] += runs
    return ClassDetail(_class_metrics_of(job_class, buckets), tuple(histogram), starts[0], now)


def _count(value: bytes | None) -> int:
    try:
        return int(value or 0)
    except ValueError:  # not a counter Sidekiq wrote: nothing to add
        return 0


def _histogram(packed: bytes | None) -> tuple[int, ...]:
    # A key shorter than 52 bytes has only its first counters set: the rest read as zeros.
    if not packed:
        return ()
    return _HISTOGRAM.unpack(packed[: _HISTOGRAM.size].ljust(_HISTOGRAM.size, b"\0"))


def _class_metrics_of(job_class: str, series: list[MetricsBucket]) -> ClassMetrics:
    return ClassMetrics(
        job_class=job_class,
        executions=sum(bucket.executions for bucket in series),
        failures=sum(bucket.failures for bucket in series),
        total_ms=sum(bucket.total_ms for bucket in series),
        buckets=tuple(series),
    )
