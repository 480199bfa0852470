"""Push a restarted job into Sidekiq's Redis as ``Sidekiq::Client`` would, for a real server to run.

The payload itself is built by ``services.job_payloads``: the job as it was pushed, with a new jid
and fresh times. Here it is pushed, once per original.
"""

from __future__ import annotations

import secrets

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


def new_jid() -> str:
    """A fresh Sidekiq job id: 24 lowercase hex characters, as ``SecureRandom.hex(12)``."""
    return secrets.token_hex(12)


class SidekiqEnqueuer:
    """Pushes restarted jobs into one Sidekiq Redis database."""

    def __init__(self, client: redis.Redis, *, sidekiq_version: int = 7) -> None:
        # The configured major version: the unit of a restart's times when no live process says.
        self.sidekiq_version = sidekiq_version
        self._restart_push = client.register_script(RESTART_PUSH)

    def push_restart(self, *, original_jid: str, jid: str, queue: str, payload: bytes) -> str:
        """Push ``payload`` (the restart of ``original_jid`` as job ``jid``) unless it was pushed before.

        Returns the jid that runs the restart: ``jid``, or the one of the earlier push.
        """
        pushed = self._restart_push(
            keys=[keys.restart_marker(original_jid), keys.QUEUES, keys.queue(queue)],
            args=[jid, queue, payload, MARKER_TTL_SECONDS],
        )
        return pushed.decode() if isinstance(pushed, bytes) else str(pushed)
