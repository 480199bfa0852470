"""Push a restarted job into Sidekiq's Redis as ``Sidekiq::Client`` would, for a real server to run.

The payload itself is built by ``services.job_payloads``: the job as it was pushed, with a new jid
and fresh times. Here it is pushed, once per original.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from sidekiq_supervisor.sidekiq_redis import keys

# One original is pushed at most once: the marker, the queue registration and the push happen
# together or not at all, and a re-run (after a crash between push and ledger commit) gets the
# jid of the first push back instead of pushing again. Redis does not undo a script's writes when
# a later command fails, so the keys' types are checked before anything is written.
RESTART_PUSH = """
local pushed = redis.call('GET', KEYS[1])
if pushed then return pushed end
for _, expected in ipairs({{KEYS[2], 'set'}, {KEYS[3], 'list'}}) do
  local found = redis.call('TYPE', expected[1]).ok
  if found ~= 'none' and found ~= expected[2] then
    return redis.error_reply('WRONGTYPE ' .. expected[1] .. ' holds a ' .. found .. ', not a ' .. expected[2])
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[4])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('LPUSH', KEYS[3], ARGV[3])
return ARGV[1]
"""
MARKER_TTL_SECONDS = 30 * 24 * 3600
# The same, to Sidekiq's Dead set (score: now) instead of a queue; trimmed as Sidekiq trims it.
QUARANTINE_PUSH = """
local pushed = redis.call('GET', KEYS[1])
if pushed then return pushed end
local found = redis.call('TYPE', KEYS[2]).ok
if found ~= 'none' and found ~= 'zset' then
  return redis.error_reply('WRONGTYPE ' .. KEYS[2] .. ' holds a ' .. found .. ', not a zset')
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -10000)
return ARGV[1]
"""
DEAD_TIMEOUT_SECONDS = 180 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Push:
    """One restart to push: ``original_jid`` again as job ``jid``, into ``queue``, or, with no
    queue, into the Dead set with the score ``now`` (a quarantine)."""

    original_jid: str
    jid: str
    payload: bytes
    queue: str | None
    now: float = 0.0


def new_jid() -> str:
    """A fresh Sidekiq job id: 24 lowercase hex characters, as ``SecureRandom.hex(12)``."""
    return secrets.token_hex(12)


class SidekiqEnqueuer:
    """Pushes restarted jobs into one Sidekiq Redis database."""

    def __init__(self, client: redis.Redis, *, sidekiq_version: int = 7) -> None:
        # The configured major version: the unit of a restart's times when no live process says.
        self.sidekiq_version = sidekiq_version
        self._client = client
        self._restart_push = client.register_script(RESTART_PUSH)
        self._quarantine_push = client.register_script(QUARANTINE_PUSH)

    def push_all(self, pushes: Sequence[Push]) -> list[str]:
        """Push each restart (or bury each quarantine) unless its original was pushed before, in
        one round trip; the jid that runs each: its own, or the one of the earlier push.

        Each push is a script of its own, so each is done whole or not at all; if Redis fails
        part-way, the ones done are marked, and a re-run gets their jids back instead of pushing.
        """
        pipeline = self._client.pipeline(transaction=False)
        for push in pushes:
            if push.queue is None:
                self._quarantine_push(
                    keys=[keys.restart_marker(push.original_jid), keys.DEAD],
                    args=[push.jid, repr(push.now), push.payload, MARKER_TTL_SECONDS,
                          repr(push.now - DEAD_TIMEOUT_SECONDS)],
                    client=pipeline,
                )  # fmt: skip
            else:
                self._restart_push(
                    keys=[keys.restart_marker(push.original_jid), keys.QUEUES, keys.queue(push.queue)],
                    args=[push.jid, push.queue, push.payload, MARKER_TTL_SECONDS],
                    client=pipeline,
                )
        return [jid.decode() if isinstance(jid, bytes) else str(jid) for jid in pipeline.execute()]
