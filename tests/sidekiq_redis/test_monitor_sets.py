"""Pages and searches of the retry, schedule and dead sets against real Sidekiq 6, 7 and 8 dumps."""

from __future__ import annotations

import json

import pytest

from sidekiq_supervisor.sidekiq_redis.jobs import epoch_seconds, parse_job
from sidekiq_supervisor.sidekiq_redis.sets import (
    JobSet,
    Sort,
    fetch_entries,
    parse_entry_key,
    read_set_page,
    search_set,
)
from tests.sidekiq_fixtures import VERSIONS, load


def in_seconds(version: str, stamp: float) -> float:
    """A dump's payload timestamp in seconds: Sidekiq 8 writes integer milliseconds."""
    return stamp / 1000 if version.startswith("8.") else stamp


def by_score(dump: dict, key: str, *, reverse: bool = False) -> list[tuple[str, float]]:
    return sorted(dump["keys"][key]["value"], key=lambda pair: pair[1], reverse=reverse)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_retry_page_lists_the_next_retry_first_with_each_entry_parsed(redis_client, version):
    dump = load(redis_client, version)
    expected = by_score(dump, "retry")

    page = read_set_page(redis_client, JobSet.RETRY, page=1, size=25, sort=Sort.ASC)

    assert (page.total, len(page.items)) == (3, 3)
    assert [(e.raw, e.score) for e in page.items] == [(member, score) for member, score in expected]
    for entry, (member, _score) in zip(page.items, expected, strict=True):
        payload = json.loads(member)
        job = entry.job
        assert (job.jid, job.job_class, job.display_class, job.args) == (
            payload["jid"],
            "FlakyJob",
            "FlakyJob",
            payload["args"],
        )
        assert (job.queue, job.error_class, job.retry_count) == ("default", "ArgumentError", 0)
        assert job.error_message == f"synthetic failure for order {payload['args'][0]}"
        assert job.failed_at == pytest.approx(in_seconds(version, payload["failed_at"]))
        assert dump["captured_at"] - 60 < job.failed_at < dump["captured_at"]


@pytest.mark.parametrize("version", VERSIONS)
def test_the_dead_set_pages_newest_death_first_and_the_schedule_by_run_time(redis_client, version):
    dump = load(redis_client, version)

    dead = read_set_page(redis_client, JobSet.DEAD, page=1, size=25, sort=Sort.DESC)
    scheduled = read_set_page(redis_client, JobSet.SCHEDULE, page=2, size=3, sort=Sort.ASC)

    assert [e.raw for e in dead.items] == [m for m, _ in by_score(dump, "dead", reverse=True)]
    assert [e.job.error_class for e in dead.items] == ["RuntimeError", "RuntimeError"]
    assert (scheduled.total, scheduled.page, scheduled.pages) == (4, 2, 2)
    ((member, score),) = by_score(dump, "schedule")[3:]
    assert [(e.raw, e.score, e.job.display_class) for e in scheduled.items] == [(member, score, "FastJob")]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_search_finds_members_containing_the_text(redis_client, version):
    dump = load(redis_client, version)
    (member, score) = next(pair for pair in dump["keys"]["retry"]["value"] if "ORD-7001" in pair[0])

    found = search_set(redis_client, JobSet.RETRY, "ORD-7001", page=1, size=25, sort=Sort.ASC)
    reminders = search_set(redis_client, JobSet.SCHEDULE, "ReminderJob", page=1, size=2, sort=Sort.DESC)
    nothing = search_set(redis_client, JobSet.DEAD, "ORD-7001", page=1, size=25, sort=Sort.ASC)

    assert [(e.raw, e.score) for e in found.items] == [(member, score)]
    assert (reminders.total, [e.raw for e in reminders.items]) == (
        3,
        [m for m, _ in by_score(dump, "schedule", reverse=True)[1:3]],
    )
    assert (nothing.total, nothing.items) == (0, ())


def test_a_search_takes_glob_characters_literally(redis_client):
    redis_client.zadd("dead", {'{"args":["a[b]*c?"]}': 1.0, '{"args":["abc"]}': 2.0, '{"args":["ab]"]}': 3.0})

    found = search_set(redis_client, JobSet.DEAD, "a[b]*", page=1, size=25, sort=Sort.ASC)

    assert [e.raw for e in found.items] == ['{"args":["a[b]*c?"]}']


def test_an_unparseable_dead_member_is_shown_as_its_raw_text(redis_client):
    redis_client.zadd("dead", {"not json {": 5.0})

    (entry,) = read_set_page(redis_client, JobSet.DEAD, page=1, size=25, sort=Sort.DESC).items

    assert (entry.job.valid, entry.job.jid, entry.job.args, entry.raw) == (
        False,
        None,
        ["not json {"],
        "not json {",
    )


def test_active_job_entries_show_the_wrapped_class_and_its_own_arguments():
    payload = {
        "class": "Sidekiq::ActiveJob::Wrapper",
        "wrapped": "InvoiceJob",
        "queue": "default",
        "jid": "cd" * 12,
        "args": [
            {
                "job_class": "InvoiceJob",
                "arguments": [
                    7,
                    {"_aj_globalid": "gid://app/User/3"},
                    {"mode": "pdf", "_aj_symbol_keys": []},
                ],
            }
        ],
    }

    job = parse_job(json.dumps(payload))

    assert (job.job_class, job.display_class) == ("Sidekiq::ActiveJob::Wrapper", "InvoiceJob")
    assert job.display_args == [7, "gid://app/User/3", {"mode": "pdf"}]


def test_mail_delivery_jobs_show_mailer_and_method():
    payload = {
        "class": "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper",
        "wrapped": "ActionMailer::MailDeliveryJob",
        "args": [{"arguments": ["UserMailer", "welcome", "deliver_now", {"params": {"id": 1}, "args": [2]}]}],
    }

    job = parse_job(json.dumps(payload))

    assert (job.display_class, job.display_args) == ("UserMailer#welcome", [{"id": 1}, [2]])


@pytest.mark.parametrize(
    ("stamp", "seconds"),
    [(1795873353.25, 1795873353.25), (1795873529310, 1795873529.31), (1795873353, 1795873353.0), ("x", None)],
)
def test_timestamps_are_read_in_seconds_whatever_unit_they_were_written_in(stamp, seconds):
    assert epoch_seconds(stamp) == seconds


def test_an_entry_is_found_by_its_score_and_jid_as_sidekiqs_fetch_does(redis_client):
    dump = load(redis_client, "8.1.7")
    member, score = dump["keys"]["dead"]["value"][0]
    jid = json.loads(member)["jid"]

    (entry,) = fetch_entries(redis_client, JobSet.DEAD, score, jid)

    assert (entry.score, entry.raw, entry.key) == (score, member, f"{score!r}-{jid}")
    assert parse_entry_key(entry.key) == (score, jid)
    assert fetch_entries(redis_client, JobSet.RETRY, score, jid) == ()
    assert fetch_entries(redis_client, JobSet.DEAD, score + 1e-3, jid) == ()
    assert fetch_entries(redis_client, JobSet.DEAD, score, "another") == ()
