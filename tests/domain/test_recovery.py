"""Automatic recovery's rule: definite evidence only."""

from __future__ import annotations

from sidekiq_supervisor.domain.liveness import SidekiqSnapshot, classify
from sidekiq_supervisor.domain.model import EventKind
from sidekiq_supervisor.domain.recovery import ClassRecoveries, Recovery, exclusion, per_class, recoverable

NOW = 1_800_000_000.0
LIVE = "web-1:10:aaaaaaaaaaaa"


def snapshot(**sets: frozenset[str]) -> SidekiqSnapshot:
    return SidekiqSnapshot(
        taken_at=NOW,
        beats={LIVE: NOW - 3},
        running={"r" * 24: LIVE},
        retrying=sets.get("retrying", frozenset()),
        dead=sets.get("dead", frozenset()),
    )


def why(
    jid: str, identity: str | None, started_ago: float, seen: SidekiqSnapshot, unknown_after=None
) -> str | None:
    verdict = classify(jid, identity, NOW - started_ago, seen, stale_after=60)
    return recoverable(jid, NOW - started_ago, verdict, seen, unknown_after=unknown_after)


def test_a_job_whose_process_stopped_heartbeating_is_recovered():
    assert why("g" * 24, "web-2:11:bbbbbbbbbbbb", 600, snapshot()) == (
        "its process web-2:11:bbbbbbbbbbbb is gone (no heartbeat)"
    )


def test_running_retrying_dead_and_doubtful_jobs_are_left_alone():
    seen = snapshot(retrying=frozenset({"y" * 24}), dead=frozenset({"d" * 24}))
    assert why("r" * 24, LIVE, 60, seen) is None  # a live process runs it
    assert why("y" * 24, "web-2:11:bbbbbbbbbbbb", 600, seen) is None  # Sidekiq will retry it
    assert why("d" * 24, "web-2:11:bbbbbbbbbbbb", 600, seen) is None  # Sidekiq gave up on it
    assert why("b" * 24, LIVE, 600, seen) is None  # its process lives: no definite evidence
    assert why("n" * 24, LIVE, 1, seen) is None  # started after the last heartbeat


def test_a_job_without_identity_is_recovered_only_past_the_age_the_operator_chose():
    seen = snapshot()
    assert why("u" * 24, None, 600, seen) is None
    assert why("u" * 24, None, 600, seen, unknown_after=900) is None
    assert why("u" * 24, None, 600, seen, unknown_after=300).startswith("started 600 s ago with no process")
    assert why("u" * 24, None, 600, snapshot(dead=frozenset({"u" * 24})), unknown_after=300) is None


def test_a_job_is_kept_out_by_its_own_options_or_by_the_operators_patterns():
    assert exclusion("Billing::ChargeJob", {"supervisor_recover": False}, ()) == (
        "its sidekiq_options say supervisor_recover: false"
    )
    assert exclusion("Billing::ChargeJob", None, ("Export*", "Billing::*")) == (
        "its class matches SUPERVISOR_RECOVER_EXCLUDE (Billing::*)"
    )
    assert (
        exclusion("Billing::ChargeJob", {"supervisor_recover": True}, ("billing::*",)) is None
    )  # case counts
    assert exclusion("ReportJob", {"retry": 3}, ("Billing::*",)) is None


def recovery(job_class: str | None, quarantined: bool = False, arguments: str | None = None) -> Recovery:
    kind = EventKind.QUARANTINED if quarantined else EventKind.RESTARTED
    detail = {"recovered": "gone", "new_jid": "n", "job_class": job_class, "arguments": arguments}
    return Recovery.from_event("j", kind, 0, {k: v for k, v in detail.items() if v is not None})


def test_recoveries_count_per_class_most_affected_first_and_old_records_under_unknown():
    done = [recovery("B"), recovery("A"), recovery("A", quarantined=True), recovery(None), recovery("B")]
    assert per_class(done) == [
        ClassRecoveries("A", 1, 1),
        ClassRecoveries("B", 2, 0),
        ClassRecoveries("(unknown)", 1, 0),
    ]


def test_a_recovery_is_found_by_its_arguments_as_every_list_finds_jobs():
    kept = recovery("MailJob", arguments='["Straße@Example.com", 42]')
    assert kept.matches(None) and kept.matches("STRAßE@example") and kept.matches("42")
    assert not kept.matches("strasse") and not recovery(None).matches("42")
