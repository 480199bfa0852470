"""Alerts: when one opens and clears, what it groups, when a message may go, and what it says.

Pure rules, no I/O and no clock: every time is passed in (epoch microseconds). The loop that reads
the ledger and Sidekiq, keeps the alerts and sends the messages is ``services.alerting`` and
``services.notifier``; the rules are told in ``docs/alerts.md``.

An alert is one *finding* kept open: a condition (``Condition``) about one *subject*, the thing
it groups by (the whole service, a job class, a gone process). A pass of the loop finds the
conditions that hold now; ``reconcile`` says which alerts open, which stay open with new figures,
and which resolve (after their condition has been absent ``resolve_after``). Each alert is told
twice at most: once when it fires, once when it resolves. The notices waiting to be told go out
together in one message (``compose``), as often as the rate limit allows (``next_message_at``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sidekiq_supervisor.domain.durations import format_duration
from sidekiq_supervisor.domain.model import Micros, iso_from_micros
from sidekiq_supervisor.domain.recovery import Recovery

SECOND: Micros = 1_000_000
MINUTE: Micros = 60 * SECOND
# Jids an alert keeps and a message names: enough to look at, few enough to read.
SAMPLE = 5
# Classes a grouped alert names with their counts; the rest are summed as "others".
NAMED_CLASSES = 5
# A class's p99 is trusted for the slow-job rule once this many of its runs completed.
MIN_COMPLETED_FOR_P99 = 20
# Lines a message holds; more notices are counted on a last line (the Alerts page has them all).
MESSAGE_LINES = 40


class Condition(StrEnum):
    """What an alert is about (its settings: ``docs/alerts.md``)."""

    UNCOMPLETED = "uncompleted"  # jobs uncompleted for longer than a fixed time
    SLOW = "slow"  # jobs of a class running longer than k x its p99
    ORPHANED = "orphaned"  # uncompleted jobs no live process runs (grouped by the gone process)
    RECOVERED = "recovered"  # jobs automatic recovery pushed again (over a window)
    QUARANTINED = "quarantined"  # jobs automatic recovery sent to the Dead set (over a window)
    FAILURE_RATE = "failure_rate"  # a class whose runs fail too often (over a window)
    SILENCE = "silence"  # no reports while Sidekiq processes are alive

    @property
    def label(self) -> str:
        """A name for people."""
        return _LABELS[self]


_LABELS = {
    Condition.UNCOMPLETED: "Jobs uncompleted too long",
    Condition.SLOW: "Jobs slower than their class",
    Condition.ORPHANED: "Orphaned jobs",
    Condition.RECOVERED: "Jobs recovered",
    Condition.QUARANTINED: "Jobs quarantined",
    Condition.FAILURE_RATE: "Failure rate",
    Condition.SILENCE: "No reports",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """A condition that holds now, about one subject: what an open alert shows and a message says.

    ``subject`` is what the alert groups by: ``""`` for the whole service, a job class, or a gone
    process's identity. ``count`` is how many things it holds (jobs, failures, minutes), ``sample``
    a few of its jids.
    """

    condition: Condition
    subject: str
    count: int
    summary: str
    sample: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The alert's identity: one open alert per key."""
        return alert_key(self.condition, self.subject)


def alert_key(condition: Condition, subject: str) -> str:
    """The identity of the alert about ``subject`` under ``condition``."""
    return f"{condition.value}:{subject}"


# --- The conditions -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunningJob:
    """An uncompleted job as the rules see it: its latest start (epoch microseconds)."""

    jid: str
    job_class: str
    started_at: Micros


def uncompleted(
    jobs: Iterable[RunningJob], now: Micros, minutes: float, *, capped: bool = False
) -> list[Finding]:
    """One finding for every job uncompleted for longer than ``minutes`` (0: the rule is off).

    ``capped`` says the jobs were read up to a limit: the count is then "at least".
    """
    if minutes <= 0:
        return []
    limit = round(minutes * MINUTE)
    old = sorted((job for job in jobs if now - job.started_at > limit), key=lambda job: job.started_at)
    if not old:
        return []
    oldest = format_duration(now - old[0].started_at)
    count = f"{'at least ' if capped else ''}{len(old)}"
    summary = (
        f"{count} {_jobs(len(old))} uncompleted for more than {_minutes(minutes)} "
        f"({by_class(job.job_class for job in old)}); the oldest started {oldest} ago"
    )
    return [Finding(Condition.UNCOMPLETED, "", len(old), summary, _sample(job.jid for job in old))]


def slow(
    jobs: Iterable[RunningJob],
    p99: Mapping[str, Micros],
    now: Micros,
    factor: float,
    floor_seconds: float,
) -> list[Finding]:
    """Per class, the jobs running longer than ``factor`` x the class's p99 (from started to
    complete), and never less than ``floor_seconds``. A class without a trusted p99 (``p99`` has
    none for it) is left out; a factor of 0 turns the rule off."""
    if factor <= 0:
        return []
    found: dict[str, list[RunningJob]] = defaultdict(list)
    limits: dict[str, Micros] = {}
    for job in jobs:
        if job.job_class not in p99:
            continue
        limit = limits.setdefault(
            job.job_class, max(round(factor * p99[job.job_class]), round(floor_seconds * SECOND))
        )
        if now - job.started_at > limit:
            found[job.job_class].append(job)
    findings = []
    for job_class, slow_jobs in sorted(found.items()):
        slow_jobs.sort(key=lambda job: job.started_at)
        oldest = format_duration(now - slow_jobs[0].started_at)
        summary = (
            f"{len(slow_jobs)} {job_class} {_jobs(len(slow_jobs))} running longer than "
            f"{format_duration(limits[job_class])} ({factor:g} x its p99 of "
            f"{format_duration(p99[job_class])}, at least {floor_seconds:g} s); the oldest for {oldest}"
        )
        findings.append(
            Finding(Condition.SLOW, job_class, len(slow_jobs), summary, _sample(j.jid for j in slow_jobs))
        )
    return findings


@dataclass(frozen=True, slots=True)
class OrphanedJob:
    """An uncompleted job no live process runs, and the process that is gone (None: its process
    lives but no longer runs it, or Sidekiq gave up on it)."""

    jid: str
    job_class: str
    gone_process: str | None
    reason: str


def orphaned(jobs: Iterable[OrphanedJob], minimum: int) -> list[Finding]:
    """One finding per gone process (and one for the orphans whose process lives on) holding at
    least ``minimum`` orphaned jobs (0: the rule is off). 500 orphans of one dead process are one
    alert, and one message."""
    if minimum <= 0:
        return []
    groups: dict[str, list[OrphanedJob]] = defaultdict(list)
    for job in jobs:
        groups[job.gone_process or ""].append(job)
    findings = []
    for process, members in sorted(groups.items()):
        if len(members) < minimum:
            continue
        where = f"of process {process}, which is gone (no heartbeat)" if process else members[0].reason
        if not process and len({job.reason for job in members}) > 1:
            where = "whose process lives on but no longer runs them, or that Sidekiq gave up on"
        classes = by_class(job.job_class for job in members)
        summary = f"{len(members)} orphaned {_jobs(len(members))} {where} ({classes})"
        findings.append(
            Finding(Condition.ORPHANED, process, len(members), summary, _sample(job.jid for job in members))
        )
    return findings


def recoveries(
    recent: Sequence[Recovery], minimum: int, window_minutes: float, *, quarantined: bool
) -> list[Finding]:
    """One finding when automatic recovery pushed again (or, with ``quarantined``, quarantined) at
    least ``minimum`` jobs in the last ``window_minutes`` (``recent``: its acts in that window; 0:
    the rule is off). It resolves once the window holds fewer."""
    if minimum <= 0:
        return []
    acts = [r for r in recent if r.quarantined is quarantined]
    if len(acts) < minimum:
        return []
    condition = Condition.QUARANTINED if quarantined else Condition.RECOVERED
    done = "quarantined in Sidekiq's Dead set" if quarantined else "recovered (pushed again)"
    classes = by_class(r.job_class or "(unknown)" for r in acts)
    summary = f"{len(acts)} {_jobs(len(acts))} {done} in the last {_minutes(window_minutes)} ({classes})"
    if acts[0].reason:
        summary += f"; the latest because {acts[0].reason}"
    return [Finding(condition, "", len(acts), summary, _sample(r.jid for r in acts))]


@dataclass(frozen=True, slots=True)
class ClassRuns:
    """How the runs of one class ended in a window: ``failed`` and ``completed`` reports."""

    job_class: str
    failed: int
    completed: int

    @property
    def runs(self) -> int:
        """Runs that ended, either way."""
        return self.failed + self.completed


def failure_rates(
    classes: Iterable[ClassRuns], percent: float, min_runs: int, window_minutes: float
) -> list[Finding]:
    """One finding per class whose runs failed ``percent`` % of the time or more in the window,
    over at least ``min_runs`` runs (0 %: the rule is off)."""
    if percent <= 0:
        return []
    findings = []
    for runs in sorted(classes, key=lambda c: c.job_class):
        if runs.runs < max(1, min_runs) or runs.failed * 100 < percent * runs.runs:
            continue
        rate = 100 * runs.failed / runs.runs
        summary = (
            f"{runs.job_class}: {runs.failed} of {runs.runs} runs failed in the last "
            f"{_minutes(window_minutes)} ({rate:.0f} %, alert at {percent:g} %)"
        )
        findings.append(Finding(Condition.FAILURE_RATE, runs.job_class, runs.failed, summary))
    return findings


def silence(
    last_report_at: Micros | None, watched_since: Micros, live_processes: int, now: Micros, minutes: float
) -> list[Finding]:
    """One finding when no report has been recorded for ``minutes`` while Sidekiq processes are
    alive: the reporting pipeline is broken (the gem, the network, a token). ``watched_since`` (when
    the watch began) stands in for a ledger that never received any report (0: the rule is off)."""
    if minutes <= 0 or live_processes <= 0:
        return []
    since = watched_since if last_report_at is None else last_report_at
    quiet = now - since
    if quiet <= round(minutes * MINUTE):
        return []
    last = "no report yet" if last_report_at is None else f"the last report {format_duration(quiet)} ago"
    summary = (
        f"no reports for more than {_minutes(minutes)} ({last}) while {live_processes} Sidekiq "
        f"{'process is' if live_processes == 1 else 'processes are'} alive: is the gem reporting?"
    )
    return [Finding(Condition.SILENCE, "", quiet // MINUTE, summary)]


# --- Opening and clearing -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """An alert that has not resolved: its identity and since when its condition is absent."""

    id: int
    key: str
    condition: Condition
    clear_since: Micros | None = None


@dataclass(frozen=True, slots=True)
class Changes:
    """What one pass changes: alerts to open, open ones found again (their figures now), open ones
    whose condition is absent (since ``now``, or still), and the ones that resolve."""

    opened: list[Finding] = field(default_factory=list)
    found_again: list[tuple[OpenAlert, Finding]] = field(default_factory=list)
    clearing: list[OpenAlert] = field(default_factory=list)
    resolved: list[OpenAlert] = field(default_factory=list)


def reconcile(
    open_alerts: Iterable[OpenAlert],
    findings: Iterable[Finding],
    evaluated: Iterable[Condition],
    now: Micros,
    resolve_after: Micros,
) -> Changes:
    """The pass's changes. A condition not ``evaluated`` (Sidekiq's Redis did not answer, say)
    leaves its alerts as they are: unknown is not clear. An alert resolves once its condition has
    been absent for ``resolve_after`` (0: at the first pass without it); found again before that,
    it stays open and was never told resolved, so a flapping condition sends nothing."""
    checked = set(evaluated)
    found = {finding.key: finding for finding in findings}
    changes = Changes()
    for alert in open_alerts:
        finding = found.pop(alert.key, None)
        if finding is not None:
            changes.found_again.append((alert, finding))
        elif alert.condition not in checked:
            continue
        elif now - (alert.clear_since if alert.clear_since is not None else now) >= resolve_after:
            changes.resolved.append(alert)
        else:
            changes.clearing.append(alert)
    changes.opened.extend(found.values())
    return changes


# --- Rate limit and retries -----------------------------------------------------------------


def next_message_at(sent_at: Iterable[Micros], now: Micros, limit: int, window: Micros) -> Micros:
    """When the next message may go: ``now`` while fewer than ``limit`` went in the last
    ``window``, else when the oldest of those leaves it. Notices wait meanwhile, and go together."""
    recent = sorted(at for at in sent_at if now - at < window)
    if len(recent) < limit:
        return now
    return recent[len(recent) - limit] + window


def retry_at(attempts: int, now: Micros, first_delay: Micros, max_delay: Micros) -> Micros:
    """When a delivery that failed ``attempts`` times is tried again: the delay doubles from
    ``first_delay`` up to ``max_delay``."""
    delay: Micros = first_delay * 2 ** min(max(attempts - 1, 0), 40)
    return now + min(max_delay, delay)


class DeliveryStatus(StrEnum):
    """Where one message stands with one notification URL."""

    PENDING = "pending"  # not sent yet: waiting for its first try, or for a retry
    SENDING = "sending"  # a process is sending it now (claimed until a deadline)
    SENT = "sent"
    FAILED = "failed"  # retried until SUPERVISOR_NOTIFY_GIVE_UP_HOURS, then given up
    DROPPED = "dropped"  # its URL left SUPERVISOR_NOTIFY before it could be sent


# --- Messages -------------------------------------------------------------------------------


class MessageKind(StrEnum):
    """What a message is: alerts firing or resolved, or a test someone asked for."""

    ALERTS = "alerts"
    TEST = "test"


class Severity(StrEnum):
    """How a message is marked where the service shows it (Apprise's notify types)."""

    FAILURE = "failure"  # at least one alert fires
    SUCCESS = "success"  # every alert it tells resolved
    INFO = "info"  # a test


@dataclass(frozen=True, slots=True)
class Notice:
    """One alert to tell: it fired (``firing``), it resolved (``resolved_at``), or both, when it
    cleared before a message could tell it fired."""

    alert_id: int
    condition: Condition
    subject: str
    summary: str
    opened_at: Micros
    firing: bool
    resolved_at: Micros | None = None
    sample: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Message:
    """What goes to every notification URL."""

    title: str
    body: str
    severity: Severity
    kind: MessageKind = MessageKind.ALERTS


def compose(notices: Sequence[Notice], service: str) -> Message:
    """One message for every notice waiting: the firing ones first, then the resolved ones."""
    firing = [n for n in notices if n.resolved_at is None]
    resolved = [n for n in notices if n.resolved_at is not None]
    parts = []
    if firing:
        parts.append(f"{len(firing)} firing")
    if resolved:
        parts.append(f"{len(resolved)} resolved")
    title = f"[{service}] " + ", ".join(parts)
    if len(notices) == 1:
        only = notices[0]
        state = "FIRING" if only.resolved_at is None else "RESOLVED"
        title = f"[{service}] {state}: {_heading(only)}"
    lines = [_line(notice) for notice in [*firing, *resolved]]
    if len(lines) > MESSAGE_LINES:
        hidden = len(lines) - MESSAGE_LINES + 1
        lines = [*lines[: MESSAGE_LINES - 1], f"... and {hidden} more: see the Alerts page (/alerts)"]
    severity = Severity.FAILURE if firing else Severity.SUCCESS
    return Message(title, "\n\n".join(lines), severity)


def test_message(service: str, targets: int) -> Message:
    """The message of the Alerts page's test button."""
    body = (
        f"A test notification from {service}, sent to each of its {targets} notification "
        f"URL{'s' if targets != 1 else ''} (SUPERVISOR_NOTIFY). Alerts will arrive like this."
    )
    return Message(f"[{service}] Test notification", body, Severity.INFO, MessageKind.TEST)


def _heading(notice: Notice) -> str:
    title = notice.condition.label
    return f"{title} ({notice.subject})" if notice.subject else title


def _line(notice: Notice) -> str:
    head = _heading(notice)
    if notice.resolved_at is None:
        text = f"FIRING {head}: {notice.summary}"
        if notice.sample:
            text += f". Jobs: {', '.join(notice.sample)}"
        return text
    lasted = format_duration(notice.resolved_at - notice.opened_at)
    if notice.firing:  # fired and cleared before a message could tell
        return f"RESOLVED {head} (fired and cleared within {lasted}): {notice.summary}"
    return f"RESOLVED {head} after {lasted}: was {notice.summary}"


# --- Records ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One alert as kept: open (``resolved_at`` None) or resolved, with the messages that told it."""

    id: int
    condition: Condition
    subject: str
    opened_at: Micros
    updated_at: Micros
    resolved_at: Micros | None
    count: int
    summary: str
    sample: tuple[str, ...]
    fired_message_id: int | None = None
    resolved_message_id: int | None = None

    @property
    def title(self) -> str:
        """The condition's title, with the subject it groups by."""
        return f"{self.condition.label} ({self.subject})" if self.subject else self.condition.label

    def document(self) -> dict[str, Any]:
        """The alert for scripts (the API and ``alerts --json``)."""
        return {
            "id": self.id,
            "condition": self.condition.value,
            "subject": self.subject,
            "title": self.title,
            "state": "open" if self.resolved_at is None else "resolved",
            "opened_at": iso_from_micros(self.opened_at),
            "updated_at": iso_from_micros(self.updated_at),
            "resolved_at": iso_from_micros(self.resolved_at),
            "count": self.count,
            "summary": self.summary,
            "sample": list(self.sample),
            "fired_message_id": self.fired_message_id,
            "resolved_message_id": self.resolved_message_id,
        }


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One message's delivery to one notification URL (shown with its secrets masked)."""

    target: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: Micros | None
    last_attempt_at: Micros | None
    sent_at: Micros | None
    error: str | None

    def document(self) -> dict[str, Any]:
        """The delivery for scripts."""
        return {
            "target": self.target,
            "status": self.status.value,
            "attempts": self.attempts,
            "next_attempt_at": iso_from_micros(self.next_attempt_at)
            if self.status is DeliveryStatus.PENDING
            else None,
            "last_attempt_at": iso_from_micros(self.last_attempt_at),
            "sent_at": iso_from_micros(self.sent_at),
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One message as kept, with its delivery to each URL."""

    id: int
    created_at: Micros
    kind: MessageKind
    title: str
    body: str
    deliveries: tuple[DeliveryRecord, ...] = ()

    @property
    def status(self) -> str:
        """One word for the whole: ``sent`` (to every URL), ``pending``, ``failed``, ``partly sent``,
        or ``not sent`` (no URL was configured)."""
        statuses = Counter(d.status for d in self.deliveries)
        if not statuses:
            return "not sent"
        if statuses[DeliveryStatus.PENDING] or statuses[DeliveryStatus.SENDING]:
            return "pending"
        if statuses[DeliveryStatus.SENT] == len(self.deliveries):
            return "sent"
        return "partly sent" if statuses[DeliveryStatus.SENT] else "failed"

    def document(self) -> dict[str, Any]:
        """The message for scripts."""
        return {
            "id": self.id,
            "created_at": iso_from_micros(self.created_at),
            "kind": self.kind.value,
            "title": self.title,
            "body": self.body,
            "status": self.status,
            "deliveries": [delivery.document() for delivery in self.deliveries],
        }


# --- Wording ---------------------------------------------------------------------------------


def by_class(classes: Iterable[str]) -> str:
    """``ExportJob 300, MailJob 200, 2 others 7``: counts per class, the largest first."""
    counts = Counter(classes)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    named = [f"{name} {count}" for name, count in ranked[:NAMED_CLASSES]]
    rest = ranked[NAMED_CLASSES:]
    if rest:
        named.append(f"{len(rest)} other classes {sum(count for _name, count in rest)}")
    return ", ".join(named)


def _jobs(count: int) -> str:
    return "job" if count == 1 else "jobs"


def _minutes(minutes: float) -> str:
    if minutes >= 60 and minutes % 60 == 0:
        return f"{minutes / 60:g} h"
    return f"{minutes:g} min"


def _sample(jids: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for jid in jids:
        out.append(jid)
        if len(out) == SAMPLE:
            break
    return tuple(out)
