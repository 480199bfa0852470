"""Redis dumps written by real Sidekiq 6.4.1, 7.3.10 and 8.1.7 processes (shared/fixtures)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import redis

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sidekiq-redis"
VERSIONS = ("6.4.1", "7.3.10", "8.1.7")


def fixture(version: str) -> dict[str, Any]:
    """The parsed dump of one Sidekiq version."""
    return json.loads((FIXTURES / f"sidekiq-{version}.json").read_text())


def load(client: redis.Redis, version: str) -> dict[str, Any]:
    """Write every key of the dump into ``client``'s (empty) database; returns the dump."""
    dump = fixture(version)
    pipe = client.pipeline(transaction=True)
    for key, entry in dump["keys"].items():
        value = entry["value"]
        if entry.get("encoding") == "base64":
            value = base64.b64decode(value)
        kind = entry["type"]
        if kind == "string":
            pipe.set(key, value)
        elif kind == "list":
            pipe.rpush(key, *value)
        elif kind == "set":
            pipe.sadd(key, *value)
        elif kind == "zset":
            pipe.zadd(key, {member: score for member, score in value})
        elif kind == "hash":
            pipe.hset(key, mapping=value)
        if entry["ttl"] > 0:
            pipe.expire(key, entry["ttl"])
    pipe.execute()
    return dump


def jids_of(dump: dict[str, Any], key: str) -> set[str]:
    """The jids of the jobs in a sorted set or list of the dump."""
    entry = dump["keys"][key]
    members = [m for m, _score in entry["value"]] if entry["type"] == "zset" else entry["value"]
    return {json.loads(member)["jid"] for member in members}


def identity(dump: dict[str, Any]) -> str:
    """The identity of the one Sidekiq process of the dump."""
    (only,) = dump["keys"]["processes"]["value"]
    return only


def running_jids(dump: dict[str, Any]) -> set[str]:
    """The jids in the process's work hash (double-encoded payloads)."""
    work = next(entry for key, entry in dump["keys"].items() if key.endswith((":work", ":workers")))
    return {json.loads(json.loads(value)["payload"])["jid"] for value in work["value"].values()}
