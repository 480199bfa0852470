"""What the liveness rules need from Sidekiq's Redis, read at one moment: heartbeats, running jobs
and the jids held in the retry, scheduled and dead sets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import redis

from sidekiq_supervisor.domain.liveness import SidekiqSnapshot
from sidekiq_supervisor.sidekiq_redis import keys
from sidekiq_supervisor.sidekiq_redis.processes import major_version, read_processes, read_work


class SidekiqReader:
    """Reads one Sidekiq Redis database into ``SidekiqSnapshot``s."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def snapshot(self, now: float) -> SidekiqSnapshot:
        """Heartbeats, running jobs, and the jids Sidekiq holds in its retry, scheduled and dead sets,
        as of ``now`` (epoch seconds)."""
        processes = read_processes(self._client)
        running = {work.job.jid: work.identity for work in read_work(self._client) if work.job.jid}
        return SidekiqSnapshot(
            taken_at=now,
            beats={process.identity: process.beat for process in processes if process.beat is not None},
            running=running,
            retrying=frozenset(self._jids_in(keys.RETRY)) | frozenset(self._jids_in(keys.SCHEDULE)),
            dead=frozenset(self._jids_in(keys.DEAD)),
            sidekiq_major=major_version(processes),
        )

    def _jids_in(self, sorted_set: str) -> Iterator[str]:
        for member, _score in self._client.zscan_iter(sorted_set, count=1000):
            jid = _payload_jid(member)
            if jid is not None:
                yield jid


def _payload_jid(payload: Any) -> str | None:
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None  # Sidekiq puts unparseable jobs in the Dead set as they came
    jid = parsed.get("jid") if isinstance(parsed, dict) else None
    return jid if isinstance(jid, str) else None
