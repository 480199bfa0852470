"""Every Sidekiq key name used here, in one place (see shared reference: Sidekiq's Redis layout)."""

from __future__ import annotations

from datetime import date, datetime

QUEUES = "queues"
PROCESSES = "processes"
RETRY = "retry"
SCHEDULE = "schedule"
DEAD = "dead"
# Sidekiq 8's profiles: a member per profiled job, scored by when it expires.
PROFILES = "profiles"
# Ours, not Sidekiq's: marks an original jid as restarted, so a restart re-run never pushes twice.
RESTART_MARKER_PREFIX = "sidekiq-supervisor:restarted:"


def queue(name: str) -> str:
    """The list a queue's waiting jobs live in; LPUSH adds, Sidekiq's BRPOP takes the oldest."""
    return f"queue:{name}"


def work(identity: str) -> str:
    """A process's work hash: thread id → the job it runs (Sidekiq 6.4.2 and later)."""
    return f"{identity}:work"


def legacy_work(identity: str) -> str:
    """The same hash under its name up to Sidekiq 6.4.1 (Debian bookworm's version)."""
    return f"{identity}:workers"


def restart_marker(jid: str) -> str:
    """The marker of a restarted original jid; its value is the new jid."""
    return RESTART_MARKER_PREFIX + jid


# --- Monitor keys (the /sidekiq pages read and act on these) ---------------------------------------

STAT_PROCESSED = "stat:processed"
STAT_FAILED = "stat:failed"
# Sidekiq Enterprise writes the identity of the cluster leader here; absent in OSS and Pro.
DEAR_LEADER = "dear-leader"


def daily_stat(stat: str, day: date) -> str:
    """The per-UTC-day counter of ``stat`` ("processed" or "failed"), kept five years by Sidekiq."""
    return f"stat:{stat}:{day:%Y-%m-%d}"


def signals(identity: str) -> str:
    """The list a process pops one signal from per heartbeat (TSTP quiet, TERM stop, TTIN dump)."""
    return f"{identity}-signals"


def metrics_minute_v7(minute: datetime) -> str:
    """Sidekiq 7's (and 6.5 beta's) per-minute metrics hash: ``j|YYYYMMDD|H:M``, hour and minute unpadded."""
    return f"j|{minute:%Y%m%d}|{minute.hour}:{minute.minute}"


def metrics_minute_v8(minute: datetime) -> str:
    """Sidekiq 8's per-minute metrics hash: ``j|YYMMDD|H:MM``, only the minute zero-padded."""
    return f"j|{minute:%y%m%d}|{minute.hour}:{minute.minute:02d}"


def metrics_ten_minutes_v8(moment: datetime) -> str:
    """Sidekiq 8's 10-minute metrics rollup: ``j|YYMMDD|H:T``, T the tens digit of the minute."""
    return f"j|{moment:%y%m%d}|{moment.hour}:{moment.minute // 10}"


def histogram_v7(job_class: str, minute: datetime) -> str:
    """Sidekiq 7's per-class, per-minute run-time histogram: ``<Class>-DD-HH:M``."""
    return f"{job_class}-{minute:%d}-{minute:%H}:{minute.minute}"


def histogram_v8(job_class: str, minute: datetime) -> str:
    """Sidekiq 8's: ``h|<Class>-D-H:M``, every part unpadded."""
    return f"h|{job_class}-{minute.day}-{minute.hour}:{minute.minute}"
