"""Processes, running jobs and signals against Redis dumps of real Sidekiq 6, 7 and 8 processes."""

from __future__ import annotations

import json

import pytest

from sidekiq_supervisor.sidekiq_redis.processes import (
    Signal,
    SignalOutcome,
    read_processes,
    read_work,
    send_signal,
    signal_all,
)
from tests.sidekiq_fixtures import VERSIONS, identity, load, running_jids

WEIGHTS = {"6.4.1": {}, "7.3.10": {"default": 2, "mailers": 1}, "8.1.7": {"default": 2, "mailers": 1}}
VERSION_FIELD = {"6.4.1": None, "7.3.10": "7.3.10", "8.1.7": "8.1.7"}


@pytest.mark.parametrize("version", VERSIONS)
def test_each_process_is_read_from_its_heartbeat(redis_client, version):
    dump = load(redis_client, version)
    beat = dump["keys"][identity(dump)]["value"]
    info = json.loads(beat["info"])

    (process,) = read_processes(redis_client)

    assert process.identity == identity(dump)
    assert (process.hostname, process.pid, process.tag) == (
        "vm",
        int(identity(dump).split(":")[1]),
        "fixtures",
    )
    assert process.queues == ("default", "mailers")
    assert process.weights == WEIGHTS[version]
    assert process.started_at == info["started_at"]
    assert (process.concurrency, process.busy) == (5, 5)
    assert process.rss_kb == int(beat["rss"])
    assert process.rtt_us == int(beat["rtt_us"])
    assert process.beat == float(beat["beat"])
    assert (process.quiet, process.embedded, process.leader) == (False, False, False)
    assert process.version == VERSION_FIELD[version]
    assert process.pending_signals == ()


def test_from_8_1_2_the_concurrency_field_wins_over_the_info_json(redis_client):
    dump = load(redis_client, "8.1.7")
    redis_client.hset(identity(dump), "concurrency", "12")

    assert read_processes(redis_client)[0].concurrency == 12


def test_capsules_give_the_queues_and_weights_of_every_capsule(redis_client):
    info = {
        "hostname": "box",
        "pid": 7,
        "identity": "box:7:aa",
        "queues": ["old"],
        "capsules": {
            "default": {"concurrency": 5, "mode": "weighted", "weights": {"default": 3, "low": 1}},
            "single": {"concurrency": 1, "mode": "strict", "weights": {"serial": 0}},
        },
    }
    redis_client.sadd("processes", "box:7:aa")
    redis_client.hset("box:7:aa", mapping={"info": json.dumps(info), "quiet": "true", "busy": "0"})
    redis_client.set("dear-leader", "box:7:aa")

    (process,) = read_processes(redis_client)

    assert process.queues == ("default", "low", "serial")
    assert process.weights == {"default": 3, "low": 1, "serial": 0}
    assert (process.quiet, process.leader, process.concurrency, process.rss_kb) == (True, True, 0, None)


def test_a_process_whose_heartbeat_expired_is_not_listed(redis_client):
    dump = load(redis_client, "7.3.10")
    redis_client.delete(identity(dump))

    assert read_processes(redis_client) == ()


@pytest.mark.parametrize("version", VERSIONS)
def test_work_lists_the_running_jobs_with_their_double_encoded_payloads(redis_client, version):
    dump = load(redis_client, version)
    work_key = next(k for k in dump["keys"] if k.endswith((":work", ":workers")))
    expected = {
        tid: (json.loads(value)["run_at"], json.loads(json.loads(value)["payload"]))
        for tid, value in dump["keys"][work_key]["value"].items()
    }

    work = read_work(redis_client)

    assert len(work) == 5
    assert {w.job.jid for w in work} == running_jids(dump)
    assert [w.run_at for w in work] == sorted(run_at for run_at, _ in expected.values())
    for entry in work:
        run_at, payload = expected[entry.thread_id]
        assert (entry.identity, entry.queue, entry.run_at) == (identity(dump), "default", run_at)
        assert (entry.job.jid, entry.job.job_class, entry.job.args) == (
            payload["jid"],
            "LongJob",
            payload["args"],
        )


def test_a_6_0_0_work_entry_with_a_nested_payload_object_is_read(redis_client):
    payload = {"class": "OldJob", "args": [1], "jid": "ab" * 12, "queue": "q"}
    redis_client.sadd("processes", "old:1:aa")
    redis_client.hset(
        "old:1:aa:workers", "t1", json.dumps({"queue": "q", "payload": payload, "run_at": 1_600_000_000})
    )

    (work,) = read_work(redis_client)

    assert (work.thread_id, work.job.jid, work.job.job_class, work.run_at) == (
        "t1",
        "ab" * 12,
        "OldJob",
        1.6e9,
    )


@pytest.mark.parametrize(("signal", "value"), [(Signal.QUIET, b"TSTP"), (Signal.STOP, b"TERM")])
def test_a_signal_is_pushed_on_the_process_signal_list_for_60_seconds(redis_client, signal, value):
    dump = load(redis_client, "8.1.7")
    key = f"{identity(dump)}-signals"

    assert send_signal(redis_client, identity(dump), signal) is SignalOutcome.SENT

    assert redis_client.lrange(key, 0, -1) == [value]
    assert 0 < redis_client.ttl(key) <= 60
    assert read_processes(redis_client)[0].pending_signals == (value.decode(),)


def test_an_unknown_or_embedded_process_gets_no_signal(redis_client):
    info = {"hostname": "e", "identity": "e:1:aa", "embedded": True}
    redis_client.sadd("processes", "e:1:aa")
    redis_client.hset("e:1:aa", mapping={"info": json.dumps(info)})

    assert send_signal(redis_client, "e:1:aa", Signal.STOP) is SignalOutcome.EMBEDDED
    assert send_signal(redis_client, "nobody:1:aa", Signal.STOP) is SignalOutcome.UNKNOWN
    assert redis_client.keys("*-signals") == []


def test_signal_all_skips_embedded_processes(redis_client):
    dump = load(redis_client, "6.4.1")
    redis_client.sadd("processes", "e:1:aa")
    redis_client.hset("e:1:aa", mapping={"info": json.dumps({"embedded": True})})

    assert signal_all(redis_client, Signal.QUIET) == 1

    assert redis_client.keys("*-signals") == [f"{identity(dump)}-signals".encode()]
