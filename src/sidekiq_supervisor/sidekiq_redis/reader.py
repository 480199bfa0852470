"""Reads of Sidekiq's Redis for the liveness of jobs: heartbeats, work hashes, retry sets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import redis

from sidekiq_supervisor.domain.liveness import SidekiqSnapshot
from sidekiq_supervisor.sidekiq_redis import keys


class SidekiqReader:
    """Reads one Sidekiq Redis database."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def snapshot(self, now: float) -> SidekiqSnapshot:
        """Heartbeats, running jobs, and the jids Sidekiq holds in its retry, scheduled and dead sets,
        as of ``now`` (epoch seconds)."""
        identities = sorted(member.decode() for member in self._client.smembers(keys.PROCESSES))
        beats, running, majors = self._processes(identities)
        return SidekiqSnapshot(
            taken_at=now,
            beats=beats,
            running=running,
            retrying=frozenset(self._jids_in(keys.RETRY)) | frozenset(self._jids_in(keys.SCHEDULE)),
            dead=frozenset(self._jids_in(keys.DEAD)),
            sidekiq_major=max(majors) if majors else None,
        )

    def _processes(self, identities: list[str]) -> tuple[dict[str, float], dict[str, str], list[int]]:
        pipe = self._client.pipeline(transaction=False)
        for identity in identities:
            pipe.hmget(identity, "beat", "info")
            pipe.hgetall(keys.work(identity))
            pipe.hgetall(keys.legacy_work(identity))
        replies = pipe.execute()
        beats: dict[str, float] = {}
        running: dict[str, str] = {}
        majors: list[int] = []
        for index, identity in enumerate(identities):
            (beat, info), work, legacy_work = replies[3 * index : 3 * index + 3]
            if beat is not None:  # an expired heartbeat hash: the process is gone
                beats[identity] = float(beat)
                majors.append(_major_version(info))
            for entry in (*work.values(), *legacy_work.values()):
                jid = _work_entry_jid(entry)
                if jid is not None:
                    running[jid] = identity
        return beats, running, majors

    def _jids_in(self, sorted_set: str) -> Iterator[str]:
        for member, _score in self._client.zscan_iter(sorted_set, count=1000):
            jid = _payload_jid(member)
            if jid is not None:
                yield jid


def _major_version(info: bytes | None) -> int:
    # The info JSON says "version" from 7.0.2 on; before that it is 6.x (or an early 7.0, which
    # writes job times in seconds too, so 6 stands for both).
    try:
        version = orjson.loads(info or b"{}").get("version")
        return int(str(version).split(".")[0])
    except (orjson.JSONDecodeError, AttributeError, ValueError):
        return 6


def _work_entry_jid(entry: bytes) -> str | None:
    # {"queue": ..., "payload": <job JSON as a string since 6.0.2, an object before>, "run_at": ...}
    try:
        payload = orjson.loads(entry).get("payload")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return _payload_jid(payload)


def _payload_jid(payload: Any) -> str | None:
    if isinstance(payload, bytes | str):
        try:
            payload = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None  # Sidekiq puts unparseable jobs in the Dead set as they came
    jid = payload.get("jid") if isinstance(payload, dict) else None
    return jid if isinstance(jid, str) else None
