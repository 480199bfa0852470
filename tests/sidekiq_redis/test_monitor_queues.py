"""Queues, their pages and deletions against Redis dumps of real Sidekiq 6, 7 and 8 processes."""

from __future__ import annotations

import json

import pytest

from sidekiq_supervisor.sidekiq_redis.queues import (
    InvalidQueueName,
    QueueOrder,
    clear_queue,
    delete_queue_job,
    read_queue_page,
    read_queues,
)
from tests.sidekiq_fixtures import VERSIONS, load


def in_seconds(version: str, stamp: float) -> float:
    """A dump's payload timestamp in seconds: Sidekiq 8 writes integer milliseconds."""
    return stamp / 1000 if version.startswith("8.") else stamp


def jids(members: list[str]) -> list[str]:
    return [json.loads(member)["jid"] for member in members]


@pytest.mark.parametrize("version", VERSIONS)
def test_each_queue_has_its_size_and_the_age_of_its_oldest_job(redis_client, version):
    dump = load(redis_client, version)
    now = dump["captured_at"]
    lists = {name: dump["keys"][f"queue:{name}"]["value"] for name in ("default", "mailers", "reports")}

    summaries = read_queues(redis_client, now)

    assert [(q.name, q.size) for q in summaries] == [("default", 3), ("mailers", 3), ("reports", 14)]
    for summary in summaries:
        oldest = json.loads(lists[summary.name][-1])
        assert summary.latency == pytest.approx(now - in_seconds(version, oldest["enqueued_at"]), abs=1e-3)
        assert 0 < summary.latency < 60


def test_an_empty_queue_has_no_latency_and_a_job_without_enqueued_at_ages_from_created_at(redis_client):
    redis_client.sadd("queues", "empty", "odd")
    redis_client.lpush("queue:odd", json.dumps({"class": "A", "args": [], "created_at": 1_000_000_000_000}))

    assert [(q.name, q.size, q.latency) for q in read_queues(redis_client, 1_000_000_100.0)] == [
        ("empty", 0, 0.0),
        ("odd", 1, 100.0),
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_queue_page_starts_with_the_newest_job_by_default(redis_client, version):
    dump = load(redis_client, version)
    members = dump["keys"]["queue:reports"]["value"]  # head (newest) first

    first = read_queue_page(redis_client, "reports", page=1, size=5, order=QueueOrder.NEWEST_FIRST)
    last = read_queue_page(redis_client, "reports", page=3, size=5, order=QueueOrder.NEWEST_FIRST)

    assert [job.jid for job in first.items] == jids(members[:5])
    assert [job.jid for job in last.items] == jids(members[10:])
    assert (last.total, last.page, last.size, last.pages) == (14, 3, 5, 3)
    assert [job.raw for job in first.items] == members[:5]
    assert first.items[0].tags == ("nightly", "finance")


@pytest.mark.parametrize("version", VERSIONS)
def test_a_queue_page_can_start_with_the_oldest_job(redis_client, version):
    dump = load(redis_client, version)
    members = dump["keys"]["queue:reports"]["value"]

    first = read_queue_page(redis_client, "reports", page=1, size=5, order=QueueOrder.OLDEST_FIRST)
    last = read_queue_page(redis_client, "reports", page=3, size=5, order=QueueOrder.OLDEST_FIRST)

    assert [job.jid for job in first.items] == jids(members[::-1][:5])
    assert [job.jid for job in last.items] == jids(members[::-1][10:])


def test_page_arguments_are_clamped(redis_client):
    load(redis_client, "7.3.10")

    page = read_queue_page(redis_client, "reports", page=-2, size=0, order=QueueOrder.NEWEST_FIRST)
    big = read_queue_page(redis_client, "reports", page=1, size=10**9, order=QueueOrder.NEWEST_FIRST)

    assert (page.page, page.size, len(page.items)) == (1, 1, 1)
    assert (big.size, len(big.items)) == (500, 14)


@pytest.mark.parametrize("version", VERSIONS)
def test_deleting_a_job_removes_exactly_that_member_once(redis_client, version):
    dump = load(redis_client, version)
    members = dump["keys"]["queue:mailers"]["value"]

    assert delete_queue_job(redis_client, "mailers", members[1]) is True
    assert delete_queue_job(redis_client, "mailers", members[1]) is False

    assert redis_client.lrange("queue:mailers", 0, -1) == [members[0].encode(), members[2].encode()]


def test_deleting_a_reformatted_copy_of_a_job_removes_nothing(redis_client):
    dump = load(redis_client, "6.4.1")
    member = dump["keys"]["queue:mailers"]["value"][0]

    assert delete_queue_job(redis_client, "mailers", json.dumps(json.loads(member))) is False
    assert redis_client.llen("queue:mailers") == 3


@pytest.mark.parametrize("version", VERSIONS)
def test_clearing_a_queue_deletes_its_jobs_and_unregisters_it(redis_client, version):
    load(redis_client, version)

    assert clear_queue(redis_client, "reports") == 14

    assert redis_client.exists("queue:reports") == 0
    assert redis_client.smembers("queues") == {b"default", b"mailers"}
    assert redis_client.llen("queue:default") == 3


@pytest.mark.parametrize("name", ["", "a b", "x/../y", "ünïcode"])
def test_a_queue_name_sidekiq_would_refuse_is_refused(redis_client, name):
    with pytest.raises(InvalidQueueName):
        read_queue_page(redis_client, name, page=1, size=5, order=QueueOrder.NEWEST_FIRST)
    with pytest.raises(InvalidQueueName):
        clear_queue(redis_client, name)
