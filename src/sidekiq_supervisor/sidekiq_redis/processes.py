"""Sidekiq's processes, as its ``ProcessSet`` and ``WorkSet`` read them: heartbeats, the jobs their
threads run, the Sidekiq version they run, and the signals sent to them.

The one reader of these keys: the Busy page, the liveness snapshot and the unit of the times a
push writes all start here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson
import redis

from sidekiq_supervisor.sidekiq_redis import keys
from sidekiq_supervisor.sidekiq_redis.jobs import JobRecord, decode_member, epoch_seconds, parse_job

# The heartbeat hash fields, in the order they are read; ``concurrency`` is a field from 8.1.2 on.
HEARTBEAT_FIELDS = ("info", "concurrency", "busy", "beat", "quiet", "rss", "rtt_us")
# Sidekiq sets the same 60 s expiry on the signal list, so a signal no process pops goes away.
SIGNAL_TTL_SECONDS = 60


class Signal(StrEnum):
    """The signals Sidekiq's API sends a process through its ``<identity>-signals`` list."""

    QUIET = "TSTP"  # stop fetching new jobs, finish the running ones
    STOP = "TERM"  # shut down within the process's timeout


class SignalOutcome(StrEnum):
    """What became of a request to signal one process."""

    SENT = "sent"
    UNKNOWN = "unknown"  # not registered, or its heartbeat hash expired: nothing would pop it
    EMBEDDED = "embedded"  # embedded processes ignore signals, and Sidekiq refuses to send them


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """One live Sidekiq process, from its heartbeat hash and the ``info`` JSON in it."""

    identity: str
    hostname: str
    pid: int | None
    tag: str | None
    labels: tuple[str, ...]
    queues: tuple[str, ...]
    # Queue → weight when the process fetches by weight (7.0.2+); empty for strict order or 6.x.
    weights: dict[str, int]
    started_at: float | None
    concurrency: int
    busy: int
    beat: float | None
    # Sidekiq writes one flag for both quiet and shutting down ("stopping?" in its API).
    quiet: bool
    rss_kb: int | None
    rtt_us: int | None
    version: str | None
    embedded: bool
    leader: bool
    # Signals sent but not yet popped by a heartbeat, oldest first (e.g. a stop on its way).
    pending_signals: tuple[str, ...]

    @property
    def major(self) -> int:
        """The Sidekiq major version it runs, which decides the unit of job timestamps to write."""
        # Only 7.0.2+ write a version; without one it runs 6.x (or an early 7.0: the same units).
        try:
            return int(self.version.split(".")[0]) if self.version else 6
        except ValueError:
            return 6


def major_version(processes: tuple[ProcessInfo, ...]) -> int | None:
    """The Sidekiq major version live processes run (the newest, mid-upgrade), or None with none."""
    return max((process.major for process in processes), default=None)


@dataclass(frozen=True, slots=True)
class Work:
    """One job a process's thread is running now."""

    identity: str
    thread_id: str
    queue: str | None
    run_at: float | None
    job: JobRecord


def read_processes(client: redis.Redis) -> tuple[ProcessInfo, ...]:
    """Every registered process whose heartbeat hash is still there, sorted by identity."""
    identities = sorted(decode_member(member) for member in client.smembers(keys.PROCESSES))
    pipe = client.pipeline(transaction=False)
    pipe.get(keys.DEAR_LEADER)
    for identity in identities:
        pipe.hmget(identity, *HEARTBEAT_FIELDS)
        pipe.lrange(keys.signals(identity), 0, -1)
    leader, *replies = pipe.execute()
    leader = decode_member(leader) if leader is not None else None
    found = []
    for index, identity in enumerate(identities):
        fields, signals = replies[2 * index], replies[2 * index + 1]
        if fields[0] is None:  # expired heartbeat: Sidekiq's ProcessSet skips it too
            continue
        found.append(_process(identity, dict(zip(HEARTBEAT_FIELDS, fields, strict=True)), leader, signals))
    return tuple(found)


def read_work(client: redis.Redis) -> tuple[Work, ...]:
    """Every running job of every registered process, the longest running first, as Sidekiq sorts."""
    identities = sorted(decode_member(member) for member in client.smembers(keys.PROCESSES))
    pipe = client.pipeline(transaction=False)
    for identity in identities:
        pipe.hgetall(keys.work(identity))
        pipe.hgetall(keys.legacy_work(identity))  # the hash's name up to 6.4.1
    replies = pipe.execute()
    work = []
    for index, identity in enumerate(identities):
        for thread_id, entry in (*replies[2 * index].items(), *replies[2 * index + 1].items()):
            parsed = _work(identity, decode_member(thread_id), entry)
            if parsed is not None:
                work.append(parsed)
    return tuple(sorted(work, key=lambda w: (w.run_at or 0.0, w.identity, w.thread_id)))


def send_signal(client: redis.Redis, identity: str, signal: Signal) -> SignalOutcome:
    """Ask one process to quiet or stop, as Sidekiq's API does (the process acts on its next beat)."""
    pipe = client.pipeline(transaction=True)
    pipe.sismember(keys.PROCESSES, identity)
    pipe.hget(identity, "info")
    registered, info = pipe.execute()
    if not registered or info is None:
        return SignalOutcome.UNKNOWN
    if _json_object(info).get("embedded"):
        return SignalOutcome.EMBEDDED
    pipe = client.pipeline(transaction=True)
    pipe.lpush(keys.signals(identity), signal.value)
    pipe.expire(keys.signals(identity), SIGNAL_TTL_SECONDS)
    pipe.execute()
    return SignalOutcome.SENT


def signal_all(client: redis.Redis, signal: Signal) -> int:
    """Signal every live, non-embedded process (Sidekiq's "Quiet All"/"Stop All"); how many were sent."""
    return sum(
        send_signal(client, process.identity, signal) is SignalOutcome.SENT
        for process in read_processes(client)
        if not process.embedded
    )


def _process(identity: str, fields: dict[str, Any], leader: str | None, signals: list[bytes]) -> ProcessInfo:
    info = _json_object(fields["info"])
    capsules = info.get("capsules") if isinstance(info.get("capsules"), dict) else None
    queues, weights = _queues_and_weights(info, capsules)
    # 8.1.2+ writes concurrency as a field of its own; before, it is only in the info JSON.
    concurrency = _number(fields["concurrency"])
    if concurrency is None:
        concurrency = _number(info.get("concurrency"))
    return ProcessInfo(
        identity=identity,
        hostname=str(info.get("hostname", identity.split(":")[0])),
        pid=_number(info.get("pid")),
        tag=info.get("tag") or None,
        labels=tuple(str(label) for label in info.get("labels") or ()),
        queues=queues,
        weights=weights,
        started_at=epoch_seconds(info.get("started_at")),
        concurrency=concurrency or 0,
        busy=_number(fields["busy"]) or 0,
        beat=_float(fields["beat"]),
        quiet=fields["quiet"] in (b"true", "true"),
        rss_kb=_number(fields["rss"]),
        rtt_us=_number(fields["rtt_us"]),
        version=info.get("version") if isinstance(info.get("version"), str) else None,
        embedded=bool(info.get("embedded")),
        leader=leader == identity,
        # LPUSH adds at the head and the heartbeat RPOPs the tail, so the tail is popped first.
        pending_signals=tuple(decode_member(signal) for signal in reversed(signals)),
    )


def _queues_and_weights(
    info: dict[str, Any], capsules: dict[str, Any] | None
) -> tuple[tuple[str, ...], dict[str, int]]:
    weights: dict[str, int] = {}
    if capsules:  # 8.0.9+: per capsule {concurrency, mode, weights}; queues/weights are deprecated
        for capsule in capsules.values():
            if isinstance(capsule, dict) and isinstance(capsule.get("weights"), dict):
                weights.update(capsule["weights"])
        return tuple(weights), weights
    raw = info.get("weights")
    # 7.0.2 wrote one tally hash, 7.0.3+ a list of per-capsule hashes.
    for tally in raw if isinstance(raw, list) else [raw]:
        if isinstance(tally, dict):
            weights.update(tally)
    queues = info.get("queues")
    return tuple(str(q) for q in queues) if isinstance(queues, list) else tuple(weights), weights


def _work(identity: str, thread_id: str, entry: bytes) -> Work | None:
    hash_ = _json_object(entry)
    payload = hash_.get("payload")
    if not isinstance(payload, str | dict):
        return None
    # A JSON string since 6.0.2 (double-encoded), a nested object in 6.0.0/6.0.1.
    return Work(
        identity=identity,
        thread_id=thread_id,
        queue=hash_.get("queue") if isinstance(hash_.get("queue"), str) else None,
        run_at=epoch_seconds(hash_.get("run_at")),
        job=parse_job(payload),
    )


def _json_object(value: bytes | str | None) -> dict[str, Any]:
    try:
        parsed = orjson.loads(value or b"{}")
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _number(value: Any) -> int | None:
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
