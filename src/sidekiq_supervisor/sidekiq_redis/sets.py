"""The Retries, Scheduled and Dead pages: pages and searches of Sidekiq's three job sorted sets."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

import redis

from sidekiq_supervisor.sidekiq_redis import keys
from sidekiq_supervisor.sidekiq_redis.jobs import JobRecord, parse_job
from sidekiq_supervisor.sidekiq_redis.paging import Page, clamp_page, slice_page

# A search keeps at most this many matches, so a filter on a huge Dead set stays bounded.
MAX_SEARCH_MATCHES = 5000
SCAN_COUNT = 500
GLOB_SPECIAL = re.compile(r"([*?\[\]\\^])")
# A job's key in Sidekiq's URLs: its score (a Ruby Float, as Float#to_s writes it), "-", its jid.
ENTRY_KEY = re.compile(r"\A(-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)-(.*)\Z", re.IGNORECASE | re.DOTALL)


class JobSet(StrEnum):
    """Sidekiq's sorted sets of jobs; the value is the key."""

    RETRY = keys.RETRY  # score: when the next retry runs
    SCHEDULE = keys.SCHEDULE  # score: when the job runs
    DEAD = keys.DEAD  # score: when the job died


class Sort(StrEnum):
    """Order by score."""

    ASC = "asc"
    DESC = "desc"


# How Sidekiq's Web UI orders each set: the next retry or run first, the latest death first.
DEFAULT_SORT = {JobSet.RETRY: Sort.ASC, JobSet.SCHEDULE: Sort.ASC, JobSet.DEAD: Sort.DESC}


@dataclass(frozen=True, slots=True)
class SetEntry:
    """One member of a job set: its score and its parsed job (``job.raw`` is the exact member)."""

    job_set: JobSet
    score: float
    job: JobRecord

    @property
    def raw(self) -> str:
        """The exact member, which acting on this entry needs."""
        return self.job.raw

    @property
    def key(self) -> str:
        """Its ``<score>-<jid>`` key, as in Sidekiq's detail page URLs."""
        return entry_key(self.score, self.job.jid)


def entry_key(score: float, jid: str | None) -> str:
    """The ``<score>-<jid>`` key of Sidekiq's detail pages (Python's ``repr`` of a float is the same
    shortest round-trip text as Ruby's ``Float#to_s`` for every timestamp-sized score)."""
    return f"{score!r}-{jid or ''}"


def parse_entry_key(key: str) -> tuple[float, str] | None:
    """The score and jid of a ``<score>-<jid>`` key, or None for text that is not one."""
    found = ENTRY_KEY.match(key)
    if found is None:
        return None
    score = float(found.group(1))
    return (score, found.group(2)) if math.isfinite(score) else None


def fetch_entries(client: redis.Redis, job_set: JobSet, score: float, jid: str) -> tuple[SetEntry, ...]:
    """The entries of ``job_set`` at exactly ``score`` whose jid is ``jid`` (Sidekiq's ``fetch``)."""
    # (member, score) pairs, members as bytes: redis-py's type covers every option and decoding.
    members = cast(
        list[tuple[bytes, float]], client.zrangebyscore(job_set.value, score, score, withscores=True)
    )
    entries = (SetEntry(job_set, found, parse_job(member)) for member, found in members)
    return tuple(entry for entry in entries if entry.job.jid == jid)


def read_set_page(
    client: redis.Redis, job_set: JobSet, *, page: int, size: int, sort: Sort
) -> Page[SetEntry]:
    """One page of ``job_set`` by rank, in score order ``sort``."""
    page, size = clamp_page(page, size)
    start = (page - 1) * size
    pipe = client.pipeline(transaction=True)  # the total and the page from one moment
    pipe.zcard(job_set.value)
    pipe.zrange(job_set.value, start, start + size - 1, desc=sort is Sort.DESC, withscores=True)
    total, members = pipe.execute()
    entries = tuple(SetEntry(job_set, score, parse_job(member)) for member, score in members)
    return Page(entries, total, page, size)


def search_set(
    client: redis.Redis, job_set: JobSet, substring: str, *, page: int, size: int, sort: Sort
) -> Page[SetEntry]:
    """The members of ``job_set`` whose raw JSON contains ``substring`` (case-sensitive), a page of them.

    Sidekiq's Web UI filters with ZSCAN MATCH ``*substring*``; so does this, with the glob characters
    of ``substring`` escaped so that it matches literally.
    """
    pattern = "*" + GLOB_SPECIAL.sub(r"\\\1", substring) + "*"
    matches: dict[bytes, float] = {}  # ZSCAN may return a member twice while Redis rehashes
    truncated = False
    for member, score in client.zscan_iter(job_set.value, match=pattern, count=SCAN_COUNT):
        if len(matches) >= MAX_SEARCH_MATCHES and member not in matches:
            truncated = True
            break
        matches[member] = score
    ordered = sorted(matches.items(), key=lambda pair: (pair[1], pair[0]), reverse=sort is Sort.DESC)
    return slice_page(
        [SetEntry(job_set, score, parse_job(member)) for member, score in ordered],
        page,
        size,
        truncated=truncated,
    )
