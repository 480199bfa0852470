"""The Queues pages: each queue's size and latency, a page of its jobs, and deleting jobs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import redis

from sidekiq_supervisor.sidekiq_redis import keys
from sidekiq_supervisor.sidekiq_redis.jobs import (
    JobRecord,
    decode_member,
    encode_member,
    latency,
    parse_job,
)
from sidekiq_supervisor.sidekiq_redis.paging import Page, clamp_page

# The names Sidekiq's Web UI opens a queue page for; anything else answers 404 there.
QUEUE_NAME = re.compile(r"\A[a-z_:.\-0-9]+\Z", re.IGNORECASE)


class QueueOrder(StrEnum):
    """Which end of a queue a page starts from."""

    NEWEST_FIRST = "newest"  # Sidekiq's default: the head of the list, where LPUSH adds
    OLDEST_FIRST = "oldest"  # Sidekiq's "asc" direction: the tail, the next job to run


class InvalidQueueName(ValueError):
    """A queue name outside ``[a-z0-9_:.-]``, which Sidekiq's Web UI refuses too."""


@dataclass(frozen=True, slots=True)
class QueueSummary:
    """One queue of the ``queues`` set."""

    name: str
    size: int
    # Seconds the oldest job has waited; 0 for an empty queue.
    latency: float


def check_queue_name(name: str) -> str:
    """``name`` if Sidekiq's Web UI would open it, else ``InvalidQueueName``."""
    if not QUEUE_NAME.match(name):
        raise InvalidQueueName(f"not a queue name Sidekiq shows: {name!r}")
    return name


def read_queues(client: redis.Redis, now: float) -> tuple[QueueSummary, ...]:
    """Every queue of the ``queues`` set, by name, with its size and latency as of ``now``."""
    names = sorted(decode_member(name) for name in client.smembers(keys.QUEUES))
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.llen(keys.queue(name))
        pipe.lindex(keys.queue(name), -1)  # the oldest job: LPUSH adds at the head
    replies = pipe.execute()
    return tuple(
        QueueSummary(
            name,
            replies[2 * index],
            0.0 if replies[2 * index + 1] is None else latency(parse_job(replies[2 * index + 1]), now),
        )
        for index, name in enumerate(names)
    )


def read_queue_page(
    client: redis.Redis, name: str, *, page: int, size: int, order: QueueOrder
) -> Page[JobRecord]:
    """One page of the jobs waiting in queue ``name``, from the end ``order`` names."""
    page, size = clamp_page(page, size)
    start, end = (page - 1) * size, page * size - 1
    key = keys.queue(check_queue_name(name))
    pipe = client.pipeline(transaction=True)  # the total and the page from one moment
    pipe.llen(key)
    if order is QueueOrder.OLDEST_FIRST:
        pipe.lrange(key, -end - 1, -start - 1)
    else:
        pipe.lrange(key, start, end)
    total, members = pipe.execute()
    if order is QueueOrder.OLDEST_FIRST:
        members.reverse()
    return Page(tuple(parse_job(member) for member in members), total, page, size)


def delete_queue_job(client: redis.Redis, name: str, raw: str) -> bool:
    """Remove one waiting job, matched by its exact stored bytes; False if it was no longer there."""
    # redis-py annotates the value as str; the exact bytes are what must match (and it sends bytes).
    return client.lrem(keys.queue(check_queue_name(name)), 1, encode_member(raw)) > 0  # type: ignore[arg-type]


def clear_queue(client: redis.Redis, name: str) -> int:
    """Delete every job of queue ``name`` and drop it from the ``queues`` set; how many jobs went."""
    key = keys.queue(check_queue_name(name))
    pipe = client.pipeline(transaction=True)
    pipe.llen(key)
    pipe.unlink(key)
    pipe.srem(keys.QUEUES, name)
    size, _unlinked, _removed = pipe.execute()
    return int(size)
