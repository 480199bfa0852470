"""Which lost jobs automatic recovery pushes again, by itself, with no one asking.

Stricter than a restart someone asks for: only definite evidence counts. A job is recovered when
the process that started it has stopped heartbeating (``Verdict.gone_process``), or, only when the
operator opts in with an age, when it was reported without a process identity (the seed's
middlewares), is that old, and Sidekiq shows no trace of it. A job in the Dead set is one Sidekiq
gave up on: it is never recovered; nor is one running or waiting for a retry.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from sidekiq_supervisor.domain.filters import fold_case
from sidekiq_supervisor.domain.liveness import Liveness, SidekiqSnapshot, Verdict
from sidekiq_supervisor.domain.model import EventKind, Micros, iso_from_micros


def recoverable(
    jid: str,
    started_at: float | None,
    verdict: Verdict,
    snapshot: SidekiqSnapshot,
    *,
    unknown_after: float | None,
) -> str | None:
    """Why ``jid`` (started at ``started_at``, epoch seconds) is recovered now, or None to leave it."""
    if jid in snapshot.dead:
        return None
    if verdict.liveness is Liveness.ORPHANED and verdict.gone_process is not None:
        return f"its process {verdict.gone_process} is gone (no heartbeat)"
    if verdict.liveness is Liveness.UNKNOWN and unknown_after is not None and started_at is not None:
        age = snapshot.taken_at - started_at
        if age >= unknown_after:
            return f"started {age:.0f} s ago with no process identity, and Sidekiq shows no trace of it"
    return None


def exclusion(job_class: str, kept_keys: Mapping[str, Any] | None, patterns: tuple[str, ...]) -> str | None:
    """Why a lost job is left to a person rather than recovered, or None: its own options say so
    (``sidekiq_options supervisor_recover: false``, kept by the gem), or its class matches one of
    the operator's shell patterns (``SUPERVISOR_RECOVER_EXCLUDE``)."""
    if kept_keys is not None and kept_keys.get("supervisor_recover") is False:
        return "its sidekiq_options say supervisor_recover: false"
    for pattern in patterns:
        if fnmatchcase(job_class, pattern):
            return f"its class matches SUPERVISOR_RECOVER_EXCLUDE ({pattern})"
    return None


def quarantine_reason(attempt: int, max_attempts: int) -> str | None:
    """Why recovery ``attempt`` (1 for a job's first) is not pushed but sent to the Dead set: a job
    lost ``max_attempts`` times already is likely what kills its process (a poison pill)."""
    if attempt <= max_attempts:
        return None
    return (
        f"lost {attempt} times along its restarts, each time with its process: recovered "
        f"{max_attempts} times, it is not pushed again (SUPERVISOR_RECOVER_MAX_ATTEMPTS)"
    )


@dataclass(frozen=True, slots=True)
class Recovery:
    """One act of automatic recovery: the job it pushed again (``new_jid``) or quarantined, when,
    which attempt along its chain, and why. The job's class, queue and arguments are kept with the
    act (None in records written before they were)."""

    jid: str
    quarantined: bool
    at: Micros
    reason: str
    new_jid: str | None = None
    attempt: int | None = None
    job_class: str | None = None
    queue: str | None = None
    arguments: str | None = None

    @classmethod
    def from_event(cls, jid: str, kind: EventKind, at: Micros, detail: dict[str, Any]) -> Recovery:
        """The recovery a ``restarted`` (by recovery) or ``quarantined`` history event records."""
        job_class, queue, arguments = (_text(detail.get(key)) for key in ("job_class", "queue", "arguments"))
        if kind is EventKind.QUARANTINED:
            reason = str(detail.get("reason", ""))
            return cls(jid, True, at, reason, job_class=job_class, queue=queue, arguments=arguments)
        attempt = detail.get("attempt")
        return cls(
            jid, False, at, str(detail.get("recovered", "")), _text(detail.get("new_jid")),
            attempt if isinstance(attempt, int) else None, job_class, queue, arguments,
        )  # fmt: skip

    def matches(self, needle: str | None) -> bool:
        """Whether the job's arguments hold ``needle`` (the house's filter: case folded, literal)."""
        if needle is None:
            return True
        return self.arguments is not None and fold_case(needle) in fold_case(self.arguments)

    def document(self) -> dict[str, Any]:
        """The recovery for scripts (the API and ``recoveries --json``): times in ISO 8601 UTC."""
        return {
            "jid": self.jid,
            "event": "quarantined" if self.quarantined else "recovered",
            "at": iso_from_micros(self.at),
            "new_jid": self.new_jid,
            "attempt": self.attempt,
            "reason": self.reason,
            "job_class": self.job_class,
            "queue": self.queue,
            "arguments": self.arguments,
        }


@dataclass(frozen=True, slots=True)
class ClassRecoveries:
    """How many jobs of one class automatic recovery pushed again and quarantined."""

    job_class: str
    recovered: int
    quarantined: int


# The window over which recoveries are counted per class (the API and the Recoveries page).
COUNTED_HOURS = 24


def per_class(recoveries: Iterable[Recovery]) -> list[ClassRecoveries]:
    """Recoveries counted per class, the most recovered-or-quarantined class first (records from
    before classes were kept count under ``(unknown)``)."""
    recovered: Counter[str] = Counter()
    quarantined: Counter[str] = Counter()
    for recovery in recoveries:
        counter = quarantined if recovery.quarantined else recovered
        counter[recovery.job_class or "(unknown)"] += 1
    both = recovered + quarantined
    classes = sorted(both, key=lambda c: (-both[c], c))
    return [ClassRecoveries(c, recovered[c], quarantined[c]) for c in classes]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
