"""Actions on entries of the retry, schedule and dead sets: enqueue now, delete, kill.

Every move is one Lua script: the exact member is ZREMed and, only if that removed it, pushed or
added elsewhere. Two clicks on "Retry Now" therefore push once, and a crash never loses or doubles
a job. The payload to push is built here in Python, not in Lua, because Lua's cjson re-encodes
floats with 14 significant digits and would truncate Sidekiq's timestamps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import redis

from sidekiq_supervisor.domain import json_text
from sidekiq_supervisor.domain.payload import job_timestamp
from sidekiq_supervisor.sidekiq_redis import keys
from sidekiq_supervisor.sidekiq_redis.jobs import decode_member, encode_member
from sidekiq_supervisor.sidekiq_redis.sets import JobSet

# Sidekiq's defaults for the Dead set (config.rb): at most 10,000 jobs, none older than 180 days.
DEAD_MAX_JOBS = 10_000
DEAD_TIMEOUT_SECONDS = 180 * 24 * 3600
BATCH = 100  # members per script call when acting on a whole set

# KEYS[1] the set, KEYS[2] "queues", KEYS[2+i] the queue list of entry i;
# ARGV[3i-2] entry i's member, ARGV[3i-1] its queue name, ARGV[3i] the payload to push.
ENQUEUE = """
local moved = 0
for i = 1, #KEYS - 2 do
  if redis.call('ZREM', KEYS[1], ARGV[3 * i - 2]) == 1 then
    redis.call('SADD', KEYS[2], ARGV[3 * i - 1])
    redis.call('LPUSH', KEYS[2 + i], ARGV[3 * i])
    moved = moved + 1
  end
end
return moved
"""

# KEYS[1] the source set, KEYS[2] "dead"; ARGV[1] now, ARGV[2] the oldest score kept,
# ARGV[3] the negated maximum size, ARGV[4..] the members. The trim is DeadSet#trim's.
KILL = """
local moved = 0
for i = 4, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[2], ARGV[1], ARGV[i])
    moved = moved + 1
  end
end
if moved > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, ARGV[3])
end
return moved
"""


def push_payload(raw: str, *, decrement: bool, now: float, sidekiq_major: int) -> tuple[str, bytes] | None:
    """The queue and payload ``Sidekiq::Client.push`` would write for a set member; None if it cannot.

    ``decrement`` is "Retry Now": Sidekiq lowers ``retry_count`` by one whenever it is present (0
    becomes -1), because a manual retry must not count against the limit. ``enqueued_at`` becomes
    ``now`` in the server's unit (float seconds up to 7, integer ms from 8), and any ``at`` goes,
    since a payload carrying one would be sent straight back to the schedule.
    """
    try:
        item: Any = json_text.loads(encode_member(raw))
    except json_text.InvalidJSON:
        return None  # an unparseable Dead-set member: Sidekiq cannot push it either
    if (
        not isinstance(item, dict)
        or not isinstance(item.get("class"), str)
        or not isinstance(item.get("args"), list)
    ):
        return None
    count = item.get("retry_count")
    if decrement and isinstance(count, int) and not isinstance(count, bool):
        item["retry_count"] = count - 1
    item.pop("at", None)
    queue = str(item.get("queue") or "default")
    item["queue"] = queue
    item["enqueued_at"] = job_timestamp(now, sidekiq_major)
    try:
        return queue, json_text.dumps(item)
    except (TypeError, ValueError, RecursionError):
        return None


def pushes_highest_first(job_set: JobSet, sidekiq_major: int) -> bool:
    """The order Sidekiq's "Retry All" / "Add All to Queue" push a set in, so that a queue ends up
    as Sidekiq would leave it: 6.x walks every set from the highest score down (``each``); from
    7.3.5 the retry and dead sets are popped lowest first (ZPOPMIN), while the scheduled set's
    "Add All to Queue" (8.x) still walks it from the highest score down."""
    return sidekiq_major < 7 or job_set is JobSet.SCHEDULE


class SetActions:
    """The actions of Sidekiq's Web UI on one Redis database's job sets."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        dead_max_jobs: int = DEAD_MAX_JOBS,
        dead_timeout_seconds: float = DEAD_TIMEOUT_SECONDS,
    ) -> None:
        self._client = client
        self._enqueue = client.register_script(ENQUEUE)
        self._kill = client.register_script(KILL)
        self._dead_max_jobs = dead_max_jobs
        self._dead_timeout = dead_timeout_seconds

    def enqueue(
        self, job_set: JobSet, members: Sequence[str], *, decrement: bool, now: float, sidekiq_major: int
    ) -> int:
        """Move these exact members to their queues ("Retry Now" with ``decrement``, else "Add to
        Queue"); how many moved. Members gone meanwhile, or not pushable, are left alone."""
        keys_: list[str] = [job_set.value, keys.QUEUES]
        argv: list[bytes | str] = []
        for raw in dict.fromkeys(members):  # the same member twice would be pushed once anyway
            prepared = push_payload(raw, decrement=decrement, now=now, sidekiq_major=sidekiq_major)
            if prepared is not None:
                queue, payload = prepared
                keys_.append(keys.queue(queue))
                argv += [encode_member(raw), queue, payload]
        return int(self._enqueue(keys=keys_, args=argv)) if argv else 0

    def delete(self, job_set: JobSet, members: Sequence[str]) -> int:
        """Remove these exact members; how many were still there."""
        if not members:
            return 0
        return int(self._client.zrem(job_set.value, *(encode_member(raw) for raw in dict.fromkeys(members))))

    def kill(self, job_set: JobSet, members: Sequence[str], *, now: float) -> int:
        """Move these exact members of the retry or schedule set to the Dead set, scored ``now``, and
        trim the Dead set as Sidekiq does; how many moved."""
        if job_set is JobSet.DEAD:
            raise ValueError("a dead job cannot be killed again")
        if not members:
            return 0
        argv: list[bytes | str | int] = [
            repr(float(now)),
            repr(float(now) - self._dead_timeout),
            -self._dead_max_jobs,
            *(encode_member(raw) for raw in dict.fromkeys(members)),
        ]
        return int(self._kill(keys=[job_set.value, keys.DEAD], args=argv))

    def enqueue_all(self, job_set: JobSet, *, decrement: bool, now: float, sidekiq_major: int) -> int:
        """Move every member that can be pushed to its queue; how many moved.

        Bounded by the set's size at the start, like Sidekiq's ``retry_all``, so entries added
        meanwhile (new failures) wait for the next call.
        """

        def pushable(raw: str) -> bool:
            return push_payload(raw, decrement=decrement, now=now, sidekiq_major=sidekiq_major) is not None

        def move(batch: list[str]) -> int:
            return self.enqueue(job_set, batch, decrement=decrement, now=now, sidekiq_major=sidekiq_major)

        return self._drain(
            job_set, move, takes=pushable, highest_first=pushes_highest_first(job_set, sidekiq_major)
        )

    def kill_all(self, job_set: JobSet, *, now: float) -> int:
        """Move every member of the retry or schedule set to the Dead set; how many moved."""
        if job_set is JobSet.DEAD:
            raise ValueError("dead jobs cannot be killed again")
        return self._drain(job_set, lambda batch: self.kill(job_set, batch, now=now), takes=lambda _raw: True)

    def delete_all(self, job_set: JobSet) -> int:
        """Empty the set (Sidekiq's "Delete All"); how many members it held."""
        pipe = self._client.pipeline(transaction=True)
        pipe.zcard(job_set.value)
        pipe.unlink(job_set.value)
        size, _ = pipe.execute()
        return int(size)

    def _drain(
        self,
        job_set: JobSet,
        act: Callable[[list[str]], int],
        *,
        takes: Callable[[str], bool],
        highest_first: bool = False,
    ) -> int:
        budget = int(self._client.zcard(job_set.value))
        done = skipped = 0
        while budget > 0:
            end = skipped + min(BATCH, budget) - 1
            # Members only (no scores), as bytes: redis-py's type covers every option and decoding.
            chunk = cast(list[bytes], self._client.zrange(job_set.value, skipped, end, desc=highest_first))
            if not chunk:
                break
            batch = [decode_member(member) for member in chunk]
            taken = [raw for raw in batch if takes(raw)]
            # Members the action never takes (unparseable jobs) stay at the front: step over them.
            skipped += len(batch) - len(taken)
            done += act(taken) if taken else 0
            budget -= len(chunk)
        return done
