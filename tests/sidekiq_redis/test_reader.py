"""The reader against Redis data written by real Sidekiq 6, 7 and 8 processes."""

from __future__ import annotations

import pytest

from sidekiq_supervisor.sidekiq_redis.snapshot import SidekiqReader
from tests.sidekiq_fixtures import VERSIONS, identity, jids_of, load, running_jids


@pytest.mark.parametrize("version", VERSIONS)
def test_a_snapshot_holds_each_live_process_and_the_jobs_its_threads_run(redis_client, version):
    dump = load(redis_client, version)

    snapshot = SidekiqReader(redis_client).snapshot(now=dump["captured_at"])

    process = identity(dump)
    assert set(snapshot.beats) == {process}
    assert dump["captured_at"] - 15 < snapshot.beats[process] <= dump["captured_at"] + 1
    assert len(snapshot.running) == 5
    assert snapshot.running == dict.fromkeys(running_jids(dump), process)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_snapshot_holds_the_jids_sidekiq_will_retry_or_run_later_and_the_dead_ones(redis_client, version):
    dump = load(redis_client, version)

    snapshot = SidekiqReader(redis_client).snapshot(now=dump["captured_at"])

    assert snapshot.retrying == jids_of(dump, "retry") | jids_of(dump, "schedule")
    assert len(snapshot.retrying) == 7
    assert snapshot.dead == jids_of(dump, "dead")
    assert len(snapshot.dead) == 2


def test_a_process_whose_heartbeat_hash_expired_has_no_beat(redis_client):
    dump = load(redis_client, "7.3.10")
    redis_client.delete(identity(dump))

    snapshot = SidekiqReader(redis_client).snapshot(now=dump["captured_at"])

    assert snapshot.beats == {}


def test_an_empty_redis_gives_an_empty_snapshot(redis_client):
    snapshot = SidekiqReader(redis_client).snapshot(now=0.0)

    assert (dict(snapshot.beats), dict(snapshot.running), snapshot.retrying, snapshot.dead) == (
        {},
        {},
        frozenset(),
        frozenset(),
    )


@pytest.mark.parametrize(("version", "major"), [("6.4.1", 6), ("7.3.10", 7), ("8.1.7", 8)])
def test_a_snapshot_tells_the_major_version_the_live_processes_run(redis_client, version, major):
    dump = load(redis_client, version)

    assert SidekiqReader(redis_client).snapshot(now=dump["captured_at"]).sidekiq_major == major


def test_without_a_live_process_the_version_is_not_known(redis_client):
    assert SidekiqReader(redis_client).snapshot(now=0.0).sidekiq_major is None
