"""The Profiles page (Sidekiq 8): jobs run under the profiler, and each one's recorded data.

Sidekiq 8 keeps a profile one day: a member ``<token>-<jid>`` of the ``profiles`` sorted set (score:
when it expires) and a hash of that name holding ``started_at``, ``jid``, ``type``, ``token``,
``size``, ``elapsed`` and ``data`` (the profile, gzipped JSON in the Firefox Profiler's format).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import redis

from sidekiq_supervisor.sidekiq_redis import keys
from sidekiq_supervisor.sidekiq_redis.jobs import decode_member

FIELDS = ("started_at", "jid", "type", "token", "size", "elapsed")
# One page lists at most this many (Sidekiq lists all; a day of profiling is rarely more).
MAX_PROFILES = 1000


@dataclass(frozen=True, slots=True)
class ProfileRecord:
    """One profile: when its job started (epoch seconds), the job, the profile's type and size."""

    key: str
    started_at: float | None
    jid: str
    type: str
    token: str
    size: int | None
    elapsed: float | None


def read_profiles(client: redis.Redis, now: float) -> tuple[ProfileRecord, ...]:
    """The profiles not yet expired, the newest first (read only: expired ones are left to Sidekiq)."""
    # Members only (no scores), as bytes: redis-py's type covers every option and decoding.
    names = cast(
        list[bytes],
        client.zrange(
            keys.PROFILES, "+inf", f"({now!r}", byscore=True, desc=True, offset=0, num=MAX_PROFILES
        ),
    )
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hmget(name, FIELDS)
    return tuple(
        _record(decode_member(name), values) for name, values in zip(names, pipe.execute(), strict=True)
    )


def read_profile_data(client: redis.Redis, key: str) -> bytes | None:
    """The recorded data of the profile ``key`` (gzipped JSON), or None: only a listed profile is
    read, so the URL cannot fetch a field of any other hash."""
    if client.zscore(keys.PROFILES, key) is None:
        return None
    return cast(bytes | None, client.hget(key, "data"))  # the client does not decode responses


def _record(key: str, values: list[bytes | None]) -> ProfileRecord:
    started_at, jid, kind, token, size, elapsed = (
        decode_member(v) if v is not None else None for v in values
    )
    return ProfileRecord(
        key=key,
        started_at=_number(started_at),
        jid=jid or "",
        type=kind or "",
        token=token or "",
        size=None if (bytes_ := _number(size)) is None else int(bytes_),
        elapsed=_number(elapsed),
    )


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
