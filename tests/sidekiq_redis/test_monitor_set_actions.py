"""Retry now, add to queue, delete and kill on real Sidekiq 6, 7 and 8 dumps: their effect on Redis."""

from __future__ import annotations

import json

import pytest

from sidekiq_supervisor.sidekiq_redis.set_actions import SetActions
from sidekiq_supervisor.sidekiq_redis.sets import JobSet
from tests.sidekiq_fixtures import VERSIONS, load

MAJOR = {"6.4.1": 6, "7.3.10": 7, "8.1.7": 8}
NOW = 1795873400.5


def members(dump: dict, key: str) -> list[str]:
    return [member for member, _score in sorted(dump["keys"][key]["value"], key=lambda pair: pair[1])]


def queue(client, name: str) -> list[dict]:
    return [json.loads(member) for member in client.lrange(f"queue:{name}", 0, -1)]


@pytest.mark.parametrize("version", VERSIONS)
def test_retry_now_moves_the_entry_to_its_queue_once_even_when_clicked_twice(redis_client, version):
    dump = load(redis_client, version)
    actions = SetActions(redis_client)
    member = members(dump, "retry")[0]
    original = json.loads(member)

    first = actions.enqueue(JobSet.RETRY, [member], decrement=True, now=NOW, sidekiq_major=MAJOR[version])
    second = actions.enqueue(JobSet.RETRY, [member], decrement=True, now=NOW, sidekiq_major=MAJOR[version])

    assert (first, second) == (1, 0)
    assert redis_client.zscore("retry", member) is None
    assert redis_client.zcard("retry") == 2
    pushed, *rest = queue(redis_client, "default")
    assert len(rest) == 3  # the dump's three waiting jobs, behind the retried one
    # Sidekiq's manual retry does not count: retry_count goes down by one (0 becomes -1).
    assert pushed == {**original, "retry_count": -1, "enqueued_at": pushed["enqueued_at"]}
    assert pushed["error_message"] == original["error_message"]
    if version.startswith("8."):
        assert pushed["enqueued_at"] == 1795873400500  # integer milliseconds
    else:
        assert pushed["enqueued_at"] == NOW and isinstance(pushed["enqueued_at"], float)


@pytest.mark.parametrize("version", VERSIONS)
def test_add_to_queue_pushes_a_scheduled_job_unchanged_to_its_queue_and_registers_it(redis_client, version):
    dump = load(redis_client, version)
    redis_client.delete("queue:mailers")
    redis_client.srem("queues", "mailers")
    member = members(dump, "schedule")[0]

    assert (
        SetActions(redis_client).enqueue(JobSet.SCHEDULE, [member], decrement=False, now=NOW, sidekiq_major=7)
        == 1
    )

    (pushed,) = queue(redis_client, "mailers")
    assert {k: v for k, v in pushed.items() if k != "enqueued_at"} == json.loads(member)
    assert "retry_count" not in pushed
    assert redis_client.sismember("queues", "mailers")
    assert redis_client.zcard("schedule") == 3


def test_a_payload_with_an_at_key_loses_it_so_it_is_not_sent_back_to_the_schedule(redis_client):
    member = json.dumps({"class": "A", "args": [], "jid": "ef" * 12, "queue": "low", "at": 1.0})
    redis_client.zadd("schedule", {member: 1.0})

    SetActions(redis_client).enqueue(JobSet.SCHEDULE, [member], decrement=False, now=NOW, sidekiq_major=7)

    (pushed,) = queue(redis_client, "low")
    assert "at" not in pushed


@pytest.mark.parametrize("version", VERSIONS)
def test_retrying_a_selection_of_dead_jobs_moves_each_once(redis_client, version):
    dump = load(redis_client, version)
    dead = members(dump, "dead")

    moved = SetActions(redis_client).enqueue(
        JobSet.DEAD, [*dead, dead[0]], decrement=True, now=NOW, sidekiq_major=MAJOR[version]
    )

    assert moved == 2
    assert redis_client.zcard("dead") == 0
    assert {job["jid"] for job in queue(redis_client, "default")[:2]} == {json.loads(m)["jid"] for m in dead}


@pytest.mark.parametrize("version", VERSIONS)
def test_delete_removes_exactly_the_given_members(redis_client, version):
    dump = load(redis_client, version)
    retry = members(dump, "retry")

    assert SetActions(redis_client).delete(JobSet.RETRY, [retry[0], retry[2], "not a member"]) == 2

    assert redis_client.zrange("retry", 0, -1) == [retry[1].encode()]


@pytest.mark.parametrize("version", VERSIONS)
def test_kill_moves_entries_to_the_dead_set_scored_now(redis_client, version):
    dump = load(redis_client, version)
    retry = members(dump, "retry")

    assert SetActions(redis_client).kill(JobSet.RETRY, retry[:2], now=NOW) == 2
    assert SetActions(redis_client).kill(JobSet.RETRY, retry[:2], now=NOW) == 0

    assert redis_client.zrange("retry", 0, -1) == [retry[2].encode()]
    assert redis_client.zcard("dead") == 4
    assert [redis_client.zscore("dead", m) for m in retry[:2]] == [NOW, NOW]


def test_kill_trims_the_dead_set_by_age_and_size_as_sidekiq_does(redis_client):
    redis_client.zadd("dead", {"ancient": NOW - 181 * 86400, **{f"old-{i}": NOW - 100 + i for i in range(4)}})
    redis_client.zadd("retry", {"victim": 1.0})
    actions = SetActions(redis_client, dead_max_jobs=4)

    assert actions.kill(JobSet.RETRY, ["victim"], now=NOW) == 1

    # ZREMRANGEBYRANK 0 -max leaves max - 1 entries, the newest, exactly as Sidekiq's trim.
    assert redis_client.zrange("dead", 0, -1) == [b"old-2", b"old-3", b"victim"]


def test_the_dead_set_cannot_be_killed(redis_client):
    with pytest.raises(ValueError, match="dead"):
        SetActions(redis_client).kill(JobSet.DEAD, ["x"], now=NOW)
    with pytest.raises(ValueError, match="dead"):
        SetActions(redis_client).kill_all(JobSet.DEAD, now=NOW)


@pytest.mark.parametrize("version", VERSIONS)
def test_retry_all_moves_every_entry_and_leaves_unpushable_ones(redis_client, version):
    dump = load(redis_client, version)
    redis_client.zadd("dead", {"not json {": 1.0, '{"no":"class"}': 2.0})

    moved = SetActions(redis_client).enqueue_all(
        JobSet.DEAD, decrement=True, now=NOW, sidekiq_major=MAJOR[version]
    )

    assert moved == 2
    assert redis_client.zrange("dead", 0, -1) == [b"not json {", b'{"no":"class"}']
    assert [job["retry_count"] for job in queue(redis_client, "default")[:2]] == [-1, -1]
    assert {job["jid"] for job in queue(redis_client, "default")[:2]} == {
        json.loads(m)["jid"] for m in members(dump, "dead")
    }


def test_retry_all_works_through_sets_larger_than_one_batch(redis_client):
    redis_client.zadd(
        "retry",
        {
            json.dumps({"class": "A", "args": [i], "queue": "bulk", "retry_count": 2}): float(i)
            for i in range(250)
        },
    )

    moved = SetActions(redis_client).enqueue_all(JobSet.RETRY, decrement=True, now=NOW, sidekiq_major=7)

    assert (moved, redis_client.zcard("retry"), redis_client.llen("queue:bulk")) == (250, 0, 250)
    assert {job["retry_count"] for job in queue(redis_client, "bulk")} == {1}


@pytest.mark.parametrize("version", VERSIONS)
def test_kill_all_moves_the_whole_schedule_to_the_dead_set(redis_client, version):
    dump = load(redis_client, version)

    assert SetActions(redis_client).kill_all(JobSet.SCHEDULE, now=NOW) == 4

    assert redis_client.zcard("schedule") == 0
    assert redis_client.zcard("dead") == 6
    assert {redis_client.zscore("dead", m) for m in members(dump, "schedule")} == {NOW}


@pytest.mark.parametrize("version", VERSIONS)
def test_delete_all_empties_the_set(redis_client, version):
    load(redis_client, version)

    assert SetActions(redis_client).delete_all(JobSet.RETRY) == 3

    assert redis_client.exists("retry") == 0
    assert redis_client.zcard("dead") == 2
