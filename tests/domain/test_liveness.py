"""Liveness rules: which uncompleted jobs a restart may take."""

from __future__ import annotations

import pytest

from sidekiq_supervisor.domain.liveness import Liveness, SidekiqSnapshot, classify, worker_identity

NOW = 1_000_000.0
ALIVE = "web-1:100:aaaaaaaaaaaa"
STALE = "web-2:200:bbbbbbbbbbbb"
SNAPSHOT = SidekiqSnapshot(
    taken_at=NOW,
    beats={ALIVE: NOW - 4, STALE: NOW - 120},
    running={"busy": ALIVE, "ghost": STALE},
    retrying=frozenset({"retry-me"}),
    dead=frozenset({"dead-one", "dead-anon"}),
)


@pytest.mark.parametrize(
    ("jid", "identity", "started_at", "expected"),
    [
        pytest.param("busy", ALIVE, NOW - 100, Liveness.RUNNING, id="in-a-live-work-hash"),
        pytest.param("busy", None, NOW - 100, Liveness.RUNNING, id="in-a-work-hash-without-identity"),
        pytest.param("retry-me", ALIVE, NOW - 100, Liveness.RETRYING, id="in-the-retry-set"),
        pytest.param("fresh", ALIVE, NOW - 1, Liveness.RUNNING, id="started-after-the-last-beat"),
        pytest.param("lost", ALIVE, NOW - 100, Liveness.ORPHANED, id="live-process-no-longer-runs-it"),
        pytest.param("dead-one", ALIVE, NOW - 100, Liveness.ORPHANED, id="in-the-dead-set"),
        pytest.param("gone", STALE, NOW - 200, Liveness.ORPHANED, id="process-heartbeat-stale"),
        pytest.param("gone", "web-9:9:cccccccccccc", NOW - 200, Liveness.ORPHANED, id="process-hash-expired"),
        pytest.param("anon", None, NOW - 200, Liveness.UNKNOWN, id="no-identity-reported"),
        pytest.param("anon", None, NOW - 1, Liveness.RUNNING, id="no-identity-started-after-a-live-beat"),
        pytest.param("ghost", STALE, NOW - 300, Liveness.ORPHANED, id="in-the-work-hash-of-a-dead-process"),
        pytest.param("ghost", None, NOW - 300, Liveness.UNKNOWN, id="no-identity-work-hash-of-dead-process"),
        pytest.param("dead-anon", None, NOW - 200, Liveness.UNKNOWN, id="no-identity-dead"),
    ],
)
def test_each_uncompleted_job_gets_the_liveness_its_traces_show(jid, identity, started_at, expected):
    verdict = classify(jid, identity, started_at, SNAPSHOT, stale_after=60)

    assert verdict.liveness is expected
    assert verdict.reason


def test_only_orphaned_and_unknown_jobs_are_restartable():
    assert {kind for kind in Liveness if kind.restartable} == {Liveness.ORPHANED, Liveness.UNKNOWN}


def test_a_shorter_staleness_takes_a_quiet_process_for_gone():
    assert classify("lost", ALIVE, NOW - 100, SNAPSHOT, stale_after=2).liveness is Liveness.ORPHANED
    assert "gone" in classify("lost", ALIVE, NOW - 100, SNAPSHOT, stale_after=2).reason


def test_the_identity_comes_from_the_report_or_from_a_live_process_on_the_same_host_and_pid():
    assert worker_identity({"identity": ALIVE}, SNAPSHOT) == ALIVE
    assert worker_identity({"hostname": "web-1", "pid": 100}, SNAPSHOT) == ALIVE
    assert worker_identity({"hostname": "web-5", "pid": 5}, SNAPSHOT) == "web-5:5"
    assert worker_identity({"thread": "abc"}, SNAPSHOT) is None
    assert worker_identity(None, SNAPSHOT) is None


@pytest.mark.parametrize(
    ("jid", "identity", "started_at"),
    [
        pytest.param("busy", ALIVE, NOW - 100, id="in-a-live-work-hash"),
        pytest.param("fresh", ALIVE, NOW - 1, id="started-after-the-last-beat"),
        pytest.param("anon", None, NOW - 1, id="no-identity-started-after-a-live-beat"),
    ],
)
def test_a_job_that_may_still_run_says_when_its_process_is_taken_for_gone(jid, identity, started_at):
    verdict = classify(jid, identity, started_at, SNAPSHOT, stale_after=60)

    assert verdict.liveness is Liveness.RUNNING
    assert verdict.settles_in == 56
    assert "last heartbeat 4 s ago; taken for gone at 60 s" in verdict.reason


def test_decided_verdicts_have_nothing_to_wait_for():
    for jid, identity in (("retry-me", ALIVE), ("lost", ALIVE), ("gone", STALE), ("anon", None)):
        assert classify(jid, identity, NOW - 200, SNAPSHOT, stale_after=60).settles_in is None
