"""The dashboard numbers against Redis dumps of real Sidekiq 6, 7 and 8 processes."""

from __future__ import annotations

import json
from datetime import date

import pytest

from sidekiq_supervisor.sidekiq_redis.stats import read_history, read_redis_info, read_stats
from tests.sidekiq_fixtures import VERSIONS, identity, load


def in_seconds(version: str, stamp: float) -> float:
    """A dump's payload timestamp in seconds: Sidekiq 8 writes integer milliseconds."""
    return stamp / 1000 if version.startswith("8.") else stamp


def expected_default_latency(dump: dict, version: str) -> float:
    oldest = json.loads(dump["keys"]["queue:default"]["value"][-1])  # dumps list head first
    return dump["captured_at"] - in_seconds(version, oldest["enqueued_at"])


@pytest.mark.parametrize("version", VERSIONS)
def test_the_summary_bar_holds_the_counts_of_the_dump(redis_client, version):
    dump = load(redis_client, version)
    keys = dump["keys"]

    stats = read_stats(redis_client, dump["captured_at"])

    assert (stats.processed, stats.failed) == (31, 5)
    assert stats.processed == int(keys["stat:processed"]["value"])
    assert stats.busy == int(keys[identity(dump)]["value"]["busy"]) == 5
    assert stats.enqueued == sum(len(keys[f"queue:{q}"]["value"]) for q in keys["queues"]["value"]) == 20
    assert (stats.retries, stats.scheduled, stats.dead, stats.processes) == (3, 4, 2, 1)
    assert stats.default_latency == pytest.approx(expected_default_latency(dump, version), abs=1e-3)
    assert 8 < stats.default_latency < 20  # seconds, not milliseconds, in every version


def test_busy_sums_every_process_and_enqueued_every_registered_queue(redis_client):
    load(redis_client, "7.3.10")
    redis_client.sadd("processes", "other:1:abc")
    redis_client.hset("other:1:abc", mapping={"busy": "3", "info": "{}"})
    redis_client.sadd("processes", "gone:2:def")  # heartbeat expired: counts as 0 busy
    redis_client.lpush("queue:unregistered", "{}")  # not in the queues set: not counted

    stats = read_stats(redis_client, 0.0)

    assert (stats.busy, stats.enqueued, stats.processes) == (8, 20, 3)


def test_an_empty_redis_has_zero_everything(redis_client):
    stats = read_stats(redis_client, 1.0e9)

    assert stats == type(stats)(0, 0, 0, 0, 0, 0, 0, 0, 0.0)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_history_holds_each_days_counters_today_first(redis_client, version):
    dump = load(redis_client, version)
    daily = {
        key.rsplit(":", 1)[1]: int(entry["value"])
        for key, entry in dump["keys"].items()
        if key.startswith("stat:processed:")
    }
    assert daily == {"2026-11-28": 31}

    history = read_history(redis_client, 3, dump["captured_at"])

    assert [(d.day, d.processed, d.failed) for d in history] == [
        (date(2026, 11, 28), 31, 5),
        (date(2026, 11, 27), 0, 0),
        (date(2026, 11, 26), 0, 0),
    ]


def test_the_history_length_is_clamped(redis_client):
    assert len(read_history(redis_client, 0, 1.0e9)) == 1
    assert len(read_history(redis_client, 10_000, 1.0e9)) == 5 * 365


def test_redis_info_reports_the_server(redis_client):
    server = redis_client.info()

    info = read_redis_info(redis_client)

    assert info.version == server["redis_version"] == "7.0.15"
    assert info.uptime_days == server["uptime_in_days"]
    assert info.connected_clients >= 1
    assert info.used_memory_human.endswith(("B", "K", "M", "G"))
