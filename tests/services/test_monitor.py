"""The monitor façade on real Sidekiq 6, 7 and 8 data: one entry point, clamped, one exception."""

from __future__ import annotations

import json

import pytest
import redis

from sidekiq_supervisor.services.sidekiq_monitor import (
    JobSet,
    QueueOrder,
    SidekiqMonitor,
    SidekiqUnavailable,
    SignalOutcome,
    Sort,
)
from sidekiq_supervisor.settings import Settings
from tests.sidekiq_fixtures import VERSIONS, identity, load

CLOSED_PORT_URL = "redis://127.0.0.1:1/0"


def url_of(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs['db']}"


@pytest.fixture(params=VERSIONS)
def loaded(request, redis_client):
    """A monitor on a Redis holding one Sidekiq version's dump, its clock at the capture time."""
    dump = load(redis_client, request.param)
    monitor = SidekiqMonitor.from_url(url_of(redis_client), clock=lambda: dump["captured_at"])
    yield monitor, dump, request.param
    monitor.close()


def test_every_page_reads_through_the_facade(loaded):
    monitor, dump, _version = loaded

    assert (monitor.stats().processed, monitor.stats().enqueued) == (31, 20)
    assert monitor.history(7)[0].processed == 31
    assert monitor.redis_info().version == "7.0.15"
    assert [p.identity for p in monitor.processes()] == [identity(dump)]
    assert monitor.work().total == 5
    assert [q.name for q in monitor.queues()] == ["default", "mailers", "reports"]
    assert monitor.queue_jobs("reports", page=2, size=10).total == 14
    assert len(monitor.queue_jobs("reports", page=2, size=10, order=QueueOrder.OLDEST_FIRST).items) == 4
    assert monitor.set_entries(JobSet.RETRY).total == 3
    assert monitor.set_entries(JobSet.SCHEDULE, search="ReminderJob").total == 3


@pytest.mark.parametrize("version", VERSIONS)
def test_the_sidekiq_major_comes_from_the_live_processes(redis_client, version):
    load(redis_client, version)
    monitor = SidekiqMonitor.from_url(url_of(redis_client), sidekiq_version=8)

    assert monitor.sidekiq_major() == int(version[0])


def test_without_a_live_process_the_configured_major_is_used(redis_client):
    assert SidekiqMonitor.from_url(url_of(redis_client), sidekiq_version=8).sidekiq_major() == 8


def test_the_dead_set_shows_newest_first_unless_asked(loaded):
    monitor, dump, _version = loaded
    newest_first = [m for m, _ in sorted(dump["keys"]["dead"]["value"], key=lambda pair: -pair[1])]

    assert [e.raw for e in monitor.set_entries(JobSet.DEAD).items] == newest_first
    assert [e.raw for e in monitor.set_entries(JobSet.DEAD, sort=Sort.ASC).items] == newest_first[::-1]


def test_retry_now_writes_enqueued_at_in_the_unit_of_the_running_version_and_a_second_click_is_a_no_op(
    loaded, redis_client
):
    monitor, dump, version = loaded
    member = dump["keys"]["retry"]["value"][0][0]

    assert monitor.retry_now(JobSet.RETRY, [member]) == 1
    assert monitor.retry_now(JobSet.RETRY, [member]) == 0

    assert redis_client.llen("queue:default") == 4
    pushed = json.loads(redis_client.lindex("queue:default", 0))
    if version.startswith("8."):
        assert pushed["enqueued_at"] == int(dump["captured_at"] * 1000)
    else:
        assert pushed["enqueued_at"] == dump["captured_at"]


def test_the_actions_of_each_set(loaded, redis_client):
    monitor, dump, _version = loaded
    scheduled = [m for m, _ in dump["keys"]["schedule"]["value"]]

    assert monitor.add_to_queue(scheduled[:1]) == 1
    assert monitor.kill(JobSet.SCHEDULE, scheduled[1:2]) == 1
    assert monitor.delete_entries(JobSet.SCHEDULE, scheduled[2:3]) == 1
    assert monitor.add_all_to_queue() == 1
    assert monitor.kill_all(JobSet.RETRY) == 3
    assert monitor.retry_all(JobSet.DEAD) == 6
    assert monitor.delete_all(JobSet.DEAD) == 0

    assert [redis_client.zcard(key) for key in ("schedule", "retry", "dead")] == [0, 0, 0]
    assert redis_client.llen("queue:mailers") == 3 + 2
    assert redis_client.llen("queue:default") == 3 + 1 + 5


def test_actions_a_set_does_not_have_are_refused(loaded):
    monitor, _dump, _version = loaded

    with pytest.raises(ValueError, match="retry now"):
        monitor.retry_now(JobSet.SCHEDULE, ["x"])
    with pytest.raises(ValueError, match="kill"):
        monitor.kill(JobSet.DEAD, ["x"])
    with pytest.raises(ValueError, match="kill"):
        monitor.kill_all(JobSet.DEAD)


def test_queue_actions_and_signals(loaded, redis_client):
    monitor, dump, _version = loaded
    member = dump["keys"]["queue:mailers"]["value"][0]

    assert monitor.delete_queue_job("mailers", member) is True
    assert monitor.clear_queue("reports") == 14
    assert monitor.quiet(identity(dump)) is SignalOutcome.SENT
    assert monitor.stop("gone:1:aa") is SignalOutcome.UNKNOWN
    assert monitor.stop_all() == 1

    assert redis_client.lrange(f"{identity(dump)}-signals", 0, -1) == [b"TERM", b"TSTP"]
    assert [(q.name, q.size) for q in monitor.queues()] == [("default", 3), ("mailers", 2)]


def test_sizes_and_pages_are_clamped(loaded):
    monitor, _dump, _version = loaded

    huge = monitor.set_entries(JobSet.RETRY, page=0, size=1_000_000)
    tiny = monitor.queue_jobs("reports", page=-5, size=-1)

    assert (huge.page, huge.size) == (1, 500)
    assert (tiny.page, tiny.size, len(tiny.items)) == (1, 1, 1)
    assert len(monitor.history(0)) == 1
    assert monitor.work(page=99, size=2).items == ()


def test_metrics_are_empty_on_sidekiq_6_and_present_from_7(loaded):
    monitor, _dump, version = loaded

    classes = {c.job_class for c in monitor.metrics(minutes=60).classes}

    assert classes == (set() if version == "6.4.1" else {"FastJob", "MailerJob", "DoomedJob", "FlakyJob"})


CALLS = [
    ("stats", ()),
    ("history", (7,)),
    ("redis_info", ()),
    ("processes", ()),
    ("work", ()),
    ("quiet", ("a:1:b",)),
    ("queues", ()),
    ("queue_jobs", ("default",)),
    ("clear_queue", ("default",)),
    ("set_entries", (JobSet.RETRY,)),
    ("retry_now", (JobSet.RETRY, ["x"])),
    ("kill_all", (JobSet.RETRY,)),
    ("delete_all", (JobSet.DEAD,)),
    ("metrics", ()),
]


@pytest.mark.parametrize(("method", "args"), CALLS)
def test_a_redis_that_is_down_gives_sidekiq_unavailable(method, args):
    monitor = SidekiqMonitor.from_url(CLOSED_PORT_URL)

    with pytest.raises(SidekiqUnavailable, match="cannot be reached"):
        getattr(monitor, method)(*args)


@pytest.mark.parametrize(("method", "args"), CALLS)
def test_a_monitor_without_redis_gives_sidekiq_unavailable(method, args):
    with pytest.raises(SidekiqUnavailable, match="no Sidekiq Redis is configured"):
        getattr(SidekiqMonitor.from_url(""), method)(*args)


def test_a_malformed_url_gives_sidekiq_unavailable():
    with pytest.raises(SidekiqUnavailable, match="not valid"):
        SidekiqMonitor.from_url("http://not-redis")


def test_the_monitor_is_built_from_the_settings(redis_client):
    load(redis_client, "7.3.10")
    settings = Settings(redis_url=url_of(redis_client), sidekiq_version=8)

    monitor = SidekiqMonitor.from_settings(settings)

    assert monitor.stats().processed == 31
    assert monitor.sidekiq_major() == 7  # the live process says 7.3.10
    redis_client.flushdb()
    assert monitor.sidekiq_major() == 8  # no process left: the configured version
