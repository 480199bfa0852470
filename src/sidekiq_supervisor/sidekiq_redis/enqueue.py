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
    """Pushes jobs into one Sidekiq Redis database."""

    def __init__(self, client: redis.Redis, *, sidekiq_version: int = 7) -> None:
        self._client = client
        self._sidekiq_version = sidekiq_version

    @classmethod
    def from_url(cls, url: str, *, sidekiq_version: int = 7) -> SidekiqEnqueuer:
        """An enqueuer for the Redis at ``url`` (as ``REDIS_URL`` in Sidekiq)."""
        return cls(
            redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5),
            sidekiq_version=sidekiq_version,
        )

    def enqueue(self, *, jid: str, job_class: str, arguments: list[Any], queue: str, now: float) -> None:
        """Register the queue and push the job in one MULTI, so both happen or neither does."""
        payload = job_payload(
            jid=jid,
            job_class=job_class,
            arguments=arguments,
            queue=queue,
            now=now,
            sidekiq_version=self._sidekiq_version,
        )
        with self._client.pipeline(transaction=True) as pipe:
            pipe.sadd(keys.QUEUES, queue)
            pipe.lpush(keys.queue(queue), payload)
            pipe.execute()
