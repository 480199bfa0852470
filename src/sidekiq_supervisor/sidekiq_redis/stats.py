"""The dashboard's numbers: the summary bar, the daily history and the Redis server's info."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import redis

from sidekiq_supervisor.sidekiq_redis import keys
from sidekiq_supervisor.sidekiq_redis.jobs import decode_member, latency, parse_job

# Sidekiq keeps daily counters five years (launcher.rb STATS_TTL); its History refuses more.
MAX_HISTORY_DAYS = 5 * 365


@dataclass(frozen=True, slots=True)
class Stats:
    """Sidekiq's summary bar, as ``Sidekiq::Stats`` computes it."""

    processed: int
    failed: int
    busy: int
    enqueued: int
    retries: int
    scheduled: int
    dead: int
    processes: int
    default_latency: float


@dataclass(frozen=True, slots=True)
class DailyStat:
    """The processed and failed counts of one UTC day."""

    day: date
    processed: int
    failed: int


@dataclass(frozen=True, slots=True)
class RedisInfo:
    """What the dashboard shows of the Redis server."""

    version: str
    uptime_days: int
    connected_clients: int
    used_memory_human: str
    used_memory_peak_human: str
    # What serves Sidekiq's data: "Redis", "Valkey" or "Dragonfly", and that server's own version.
    store_name: str = "Redis"
    store_version: str = ""


def read_stats(client: redis.Redis, now: float) -> Stats:
    """The summary bar as of ``now`` (epoch seconds, for the latency)."""
    pipe = client.pipeline(transaction=False)
    pipe.get(keys.STAT_PROCESSED)
    pipe.get(keys.STAT_FAILED)
    pipe.zcard(keys.SCHEDULE)
    pipe.zcard(keys.RETRY)
    pipe.zcard(keys.DEAD)
    pipe.smembers(keys.PROCESSES)
    pipe.smembers(keys.QUEUES)
    # The tail of a list is its oldest job (LPUSH adds at the head), so its age is the latency.
    pipe.lindex(keys.queue("default"), -1)
    processed, failed, scheduled, retries, dead, processes, queues, oldest = pipe.execute()
    # Like Sidekiq, busy sums every registered process, even one whose heartbeat just expired
    # (HGET then gives nothing, which counts as 0).
    pipe = client.pipeline(transaction=False)
    for identity in processes:
        pipe.hget(identity, "busy")
    for name in queues:
        pipe.llen(keys.queue(decode_member(name)))
    counts = pipe.execute()
    return Stats(
        processed=_int(processed),
        failed=_int(failed),
        busy=sum(_int(count) for count in counts[: len(processes)]),
        enqueued=sum(counts[len(processes) :]),
        retries=retries,
        scheduled=scheduled,
        dead=dead,
        processes=len(processes),
        default_latency=0.0 if oldest is None else latency(parse_job(oldest), now),
    )


def read_history(client: redis.Redis, days: int, now: float) -> tuple[DailyStat, ...]:
    """Processed and failed counts per UTC day, today (as of ``now``) first, ``days`` days back."""
    days = max(1, min(MAX_HISTORY_DAYS, days))
    today = datetime.fromtimestamp(now, UTC).date()
    dates = [today - timedelta(days=back) for back in range(days)]
    pipe = client.pipeline(transaction=False)
    pipe.mget([keys.daily_stat("processed", day) for day in dates])
    pipe.mget([keys.daily_stat("failed", day) for day in dates])
    processed, failed = pipe.execute()
    return tuple(
        DailyStat(day, _int(done), _int(failures))
        for day, done, failures in zip(dates, processed, failed, strict=True)
    )


def read_redis_info(client: redis.Redis) -> RedisInfo:
    """The server's version, uptime, clients and memory, from INFO."""
    info: dict[str, Any] = client.info()
    # Valkey and Dragonfly answer as Redis too, and name themselves in a key of their own.
    store_name, store_version = "Redis", str(info.get("redis_version", ""))
    for name in ("Dragonfly", "Valkey"):
        if f"{name.lower()}_version" in info:
            store_name, store_version = name, str(info[f"{name.lower()}_version"])
            break
    return RedisInfo(
        version=str(info.get("redis_version", "")),
        uptime_days=_int(info.get("uptime_in_days")),
        connected_clients=_int(info.get("connected_clients")),
        used_memory_human=str(info.get("used_memory_human", "")),
        used_memory_peak_human=str(info.get("used_memory_peak_human", "")),
        store_name=store_name,
        store_version=store_version,
    )


def _int(value: Any) -> int:
    # Counters come back as bytes; a missing key or field is a zero, as in Sidekiq's to_i.
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0
