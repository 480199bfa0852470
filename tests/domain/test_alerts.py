"""The alert rules: when each condition holds, what it groups, when an alert opens and resolves,
when a message may go, and what it says."""

from __future__ import annotations

from sidekiq_supervisor.domain import alerts
from sidekiq_supervisor.domain.alerts import (
    MINUTE,
    SECOND,
    ClassRuns,
    Condition,
    DeliveryRecord,
    DeliveryStatus,
    MessageKind,
    MessageRecord,
    Notice,
    OpenAlert,
    OrphanedJob,
    RunningJob,
    Severity,
)
from sidekiq_supervisor.domain.recovery import Recovery

NOW = 1_700_000_000 * SECOND


def running(jid: str, job_class: str, minutes_ago: float) -> RunningJob:
    return RunningJob(jid, job_class, NOW - round(minutes_ago * MINUTE))


def test_jobs_uncompleted_past_the_limit_make_one_alert_for_the_whole_service():
    jobs = [
        running("a", "Export", 45),
        running("b", "Mail", 31),
        running("c", "Export", 29),
        running("d", "X", 90),
    ]

    (finding,) = alerts.uncompleted(jobs, NOW, 30)

    assert (finding.condition, finding.subject, finding.count) == (Condition.UNCOMPLETED, "", 3)
    assert finding.sample == ("d", "a", "b")  # oldest first
    assert finding.summary.startswith("3 jobs uncompleted for more than 30 min (Export 1, Mail 1, X 1)")
    assert "the oldest started 1 h 30 min ago" in finding.summary
    assert alerts.uncompleted(jobs, NOW, 120) == []
    assert alerts.uncompleted(jobs, NOW, 0) == []  # off
    (capped,) = alerts.uncompleted(jobs, NOW, 30, capped=True)
    assert capped.summary.startswith("at least 3 jobs")


def test_slow_jobs_are_grouped_by_class_against_k_times_its_p99_and_never_below_the_floor():
    jobs = [
        running("a", "Export", 11),  # p99 2 min: 5 x = 10 min
        running("b", "Export", 9),
        running("c", "Mail", 3),  # p99 1 s: 5 s, but the floor is 60 s
        running("d", "Mail", 0.5),
        running("e", "Unknown", 600),  # no trusted p99
    ]
    p99 = {"Export": 2 * MINUTE, "Mail": SECOND}

    found = alerts.slow(jobs, p99, NOW, factor=5, floor_seconds=60)

    assert [(f.subject, f.count, f.sample) for f in found] == [("Export", 1, ("a",)), ("Mail", 1, ("c",))]
    assert found[1].summary.startswith(
        "1 Mail job running longer than 1 min 00 s (5 x its p99 of 1 s, at least 60 s)"
    )
    assert alerts.slow(jobs, p99, NOW, factor=0, floor_seconds=60) == []


def test_five_hundred_orphans_of_one_dead_process_are_one_alert():
    jobs = [OrphanedJob(f"j{i}", "Export" if i % 2 else "Mail", "web-2:11:abc", "gone") for i in range(500)]
    jobs += [
        OrphanedJob("k", "Mail", "web-3:12:def", "gone"),
        OrphanedJob("l", "Mail", None, "alive but idle"),
    ]

    found = alerts.orphaned(jobs, minimum=1)

    assert [(f.subject, f.count) for f in found] == [("", 1), ("web-2:11:abc", 500), ("web-3:12:def", 1)]
    assert found[1].summary == (
        "500 orphaned jobs of process web-2:11:abc, which is gone (no heartbeat) (Export 250, Mail 250)"
    )
    assert len(found[1].sample) == alerts.SAMPLE
    assert found[0].summary == "1 orphaned job alive but idle (Mail 1)"
    assert [f.subject for f in alerts.orphaned(jobs, minimum=2)] == ["web-2:11:abc"]
    assert alerts.orphaned(jobs, minimum=0) == []


def test_recoveries_and_quarantines_in_the_window_are_one_alert_each():
    recent = [
        Recovery("q1", True, NOW, "lost 4 times", job_class="Poison"),
        Recovery("r1", False, NOW - 1, "its process p is gone", job_class="Export"),
        Recovery("r2", False, NOW - 2, "its process p is gone", job_class="Export"),
    ]

    (recovered,) = alerts.recoveries(recent, 1, 60, quarantined=False)
    (quarantined,) = alerts.recoveries(recent, 1, 60, quarantined=True)

    assert (recovered.condition, recovered.count, recovered.sample) == (Condition.RECOVERED, 2, ("r1", "r2"))
    assert recovered.summary == (
        "2 jobs recovered (pushed again) in the last 1 h (Export 2); the latest because its process p is gone"
    )
    assert (quarantined.condition, quarantined.count) == (Condition.QUARANTINED, 1)
    assert alerts.recoveries(recent, 3, 60, quarantined=False) == []
    assert alerts.recoveries(recent, 0, 60, quarantined=True) == []


def test_a_class_fails_too_often_only_over_enough_runs():
    classes = [
        ClassRuns("Flaky", failed=5, completed=15),  # 25 %
        ClassRuns("Fine", failed=1, completed=99),
        ClassRuns("Rare", failed=3, completed=0),  # 100 %, but 3 runs
    ]

    (finding,) = alerts.failure_rates(classes, percent=25, min_runs=10, window_minutes=15)

    assert (finding.condition, finding.subject, finding.count) == (Condition.FAILURE_RATE, "Flaky", 5)
    assert finding.summary == "Flaky: 5 of 20 runs failed in the last 15 min (25 %, alert at 25 %)"
    assert [f.subject for f in alerts.failure_rates(classes, 25, 3, 15)] == ["Flaky", "Rare"]
    assert alerts.failure_rates(classes, 0, 1, 15) == []


def test_silence_counts_only_while_processes_are_alive():
    last = NOW - 20 * MINUTE
    (finding,) = alerts.silence(last, NOW - 60 * MINUTE, live_processes=2, now=NOW, minutes=15)
    assert finding.summary.startswith("no reports for more than 15 min (the last report 20 min 00 s ago)")
    assert "while 2 Sidekiq processes are alive" in finding.summary
    assert alerts.silence(last, NOW, 0, NOW, 15) == []  # nothing runs: quiet is fine
    assert alerts.silence(last, NOW - 60 * MINUTE, 1, NOW, 30) == []
    # A service that just started waits its own minutes before calling an empty ledger silent.
    assert alerts.silence(None, NOW - 10 * MINUTE, 1, NOW, 15) == []
    (never,) = alerts.silence(None, NOW - 16 * MINUTE, 1, NOW, 15)
    assert "(no report yet)" in never.summary
    assert alerts.silence(last, NOW - 60 * MINUTE, 1, NOW, 0) == []


def finding(condition: Condition, subject: str = "") -> alerts.Finding:
    return alerts.Finding(condition, subject, 1, "x")


def test_reconcile_opens_new_alerts_keeps_found_ones_and_resolves_absent_ones_after_the_hold():
    open_alerts = [
        OpenAlert(1, "orphaned:p1", Condition.ORPHANED),
        OpenAlert(2, "orphaned:p2", Condition.ORPHANED),
        OpenAlert(3, "orphaned:p3", Condition.ORPHANED, clear_since=NOW - 61 * SECOND),
        OpenAlert(4, "silence:", Condition.SILENCE),
    ]
    findings = [finding(Condition.ORPHANED, "p1"), finding(Condition.ORPHANED, "p9")]

    changes = alerts.reconcile(open_alerts, findings, [Condition.ORPHANED], NOW, 60 * SECOND)

    assert [f.key for f in changes.opened] == ["orphaned:p9"]
    assert [(a.id, f.key) for a, f in changes.found_again] == [(1, "orphaned:p1")]
    assert [a.id for a in changes.clearing] == [2]  # absent from now on: not resolved yet
    assert [a.id for a in changes.resolved] == [3]
    # The silence rule was not evaluated (Redis did not answer): its alert stays as it is.
    assert 4 not in {a.id for a in [*changes.clearing, *changes.resolved]}


def test_without_a_hold_an_absent_condition_resolves_at_once():
    changes = alerts.reconcile([OpenAlert(1, "silence:", Condition.SILENCE)], [], [Condition.SILENCE], NOW, 0)
    assert [a.id for a in changes.resolved] == [1]


def test_the_rate_limit_lets_a_message_go_when_the_oldest_of_the_window_leaves_it():
    window = 60 * MINUTE
    assert alerts.next_message_at([], NOW, 2, window) == NOW
    assert alerts.next_message_at([NOW - 10 * MINUTE], NOW, 2, window) == NOW
    sent = [NOW - 50 * MINUTE, NOW - 10 * MINUTE, NOW - 90 * MINUTE]
    assert alerts.next_message_at(sent, NOW, 2, window) == NOW + 10 * MINUTE
    assert alerts.next_message_at(sent, NOW + 10 * MINUTE, 2, window) == NOW + 10 * MINUTE


def test_retries_back_off_doubling_up_to_the_cap():
    delays = [alerts.retry_at(n, NOW, 10 * SECOND, 60 * SECOND) - NOW for n in range(1, 6)]
    assert delays == [10 * SECOND, 20 * SECOND, 40 * SECOND, 60 * SECOND, 60 * SECOND]
    assert alerts.retry_at(10_000, NOW, SECOND, MINUTE) == NOW + MINUTE


def notice(alert_id: int, resolved: bool = False, firing: bool = True) -> Notice:
    return Notice(
        alert_id, Condition.ORPHANED, f"p{alert_id}", f"{alert_id} orphans", NOW - 5 * MINUTE, firing,
        NOW if resolved else None, ("j1", "j2"),
    )  # fmt: skip


def test_one_notice_makes_a_message_titled_by_it():
    message = alerts.compose([notice(1)], "supervisor@web-1")
    assert message.title == "[supervisor@web-1] FIRING: Orphaned jobs (p1)"
    assert message.body == "FIRING Orphaned jobs (p1): 1 orphans. Jobs: j1, j2"
    assert message.severity is Severity.FAILURE

    resolved = alerts.compose([notice(1, resolved=True, firing=False)], "s")
    assert resolved.title == "[s] RESOLVED: Orphaned jobs (p1)"
    assert resolved.body == "RESOLVED Orphaned jobs (p1) after 5 min 00 s: was 1 orphans"
    assert resolved.severity is Severity.SUCCESS


def test_notices_waiting_together_go_in_one_message_firing_first():
    message = alerts.compose(
        [notice(1, resolved=True, firing=False), notice(2), notice(3, resolved=True)], "s"
    )
    assert message.title == "[s] 1 firing, 2 resolved"
    lines = message.body.split("\n\n")
    assert lines[0].startswith("FIRING Orphaned jobs (p2)")
    assert lines[2] == "RESOLVED Orphaned jobs (p3) (fired and cleared within 5 min 00 s): 3 orphans"
    assert message.severity is Severity.FAILURE


def test_a_message_of_many_notices_stays_readable():
    message = alerts.compose([notice(i) for i in range(100)], "s")
    lines = message.body.split("\n\n")
    assert len(lines) == alerts.MESSAGE_LINES
    assert lines[-1] == "... and 61 more: see the Alerts page (/alerts)"


def delivery(status: DeliveryStatus) -> DeliveryRecord:
    return DeliveryRecord("json://h/", status, 1, NOW, NOW, None, None)


def test_a_message_status_sums_up_its_deliveries():
    def status(*statuses: DeliveryStatus) -> str:
        return MessageRecord(1, NOW, MessageKind.ALERTS, "t", "b", tuple(map(delivery, statuses))).status

    assert status() == "not sent"
    assert status(DeliveryStatus.SENT, DeliveryStatus.SENT) == "sent"
    assert status(DeliveryStatus.SENT, DeliveryStatus.PENDING) == "pending"
    assert status(DeliveryStatus.SENT, DeliveryStatus.FAILED) == "partly sent"
    assert status(DeliveryStatus.FAILED, DeliveryStatus.DROPPED) == "failed"


def test_counts_per_class_name_the_largest_and_sum_the_rest():
    names = ["A"] * 5 + ["B"] * 4 + ["C", "D", "E", "F", "G", "G"]
    assert alerts.by_class(names) == "A 5, B 4, G 2, C 1, D 1, 2 other classes 2"
