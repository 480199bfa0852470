"""Push a job into Sidekiq's Redis exactly as ``Sidekiq::Client`` would, for a real server to run.

The payload carries ``class``, ``args``, ``jid``, ``queue`` and an explicit ``retry`` (without it a
job whose class fails to load is dropped, not retried), and ``created_at``/``enqueued_at`` in the
server's unit: float seconds up to Sidekiq 7, integer milliseconds from Sidekiq 8.
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson
import redis

from sidekiq_supervisor.sidekiq_redis import keys

# One original is pushed at most once: the marker, the queue registration and the push happen
# together or not at all, and a re-run (after a crash between push and ledger commit) gets the
# jid of the first push back instead of pushing again.
RESTART_PUSH = """
local pushed = redis.call('GET', KEYS[1])
if pushed then return pushed end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[4])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('LPUSH', KEYS[3], ARGV[3])
return ARGV[1]
"""
MARKER_TTL_SECONDS = 30 * 24 * 3600


def new_jid() -> str:
    """A fresh Sidekiq job id: 24 lowercase hex characters, as ``SecureRandom.hex(12)``."""
    return secrets.token_hex(12)


def job_payload(
    *, jid: str, job_class: str, arguments: list[Any], queue: str, now: float, sidekiq_version: int
) -> bytes:
    """The compact JSON payload Sidekiq's client would store for this job."""
    stamp: float | int = int(now * 1000) if sidekiq_version >= 8 else float(now)
    payload = {
        "class": job_class,
        "args": arguments,
        "queue": queue,
        "retry": True,
        "jid": jid,
        "created_at": stamp,
        "enqueued_at": stamp,
    }
    return orjson.dumps(payload)


class SidekiqEnqueuer:
    """Pushes restarted jobs into one Sidekiq Redis database."""

    def __init__(self, client: redis.Redis, *, sidekiq_version: int = 7) -> None:
        self._sidekiq_version = sidekiq_version
        self._restart_push = client.register_script(RESTART_PUSH)

    def push_restart(
        self,
        *,
        original_jid: str,
        jid: str,
        job_class: str,
        arguments: list[Any],
        queue: str,
        now: float,
        sidekiq_version: int | None = None,
    ) -> str:
        """Push the restart of ``original_jid`` as job ``jid``, unless it was pushed before.

        ``sidekiq_version`` (the major version the live processes run, when known) overrides the
        configured one. Returns the jid that runs the restart: ``jid``, or the one of the earlier push.
        """
        payload = job_payload(
            jid=jid,
            job_class=job_class,
            arguments=arguments,
            queue=queue,
            now=now,
            sidekiq_version=sidekiq_version or self._sidekiq_version,
        )
        pushed = self._restart_push(
            keys=[keys.restart_marker(original_jid), keys.QUEUES, keys.queue(queue)],
            args=[jid, queue, payload, MARKER_TTL_SECONDS],
        )
        return pushed.decode() if isinstance(pushed, bytes) else str(pushed)
