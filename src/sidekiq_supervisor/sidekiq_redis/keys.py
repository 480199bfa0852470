"""Every Sidekiq key name used here, in one place (see shared reference: Sidekiq's Redis layout)."""

from __future__ import annotations

QUEUES = "queues"
PROCESSES = "processes"
RETRY = "retry"
SCHEDULE = "schedule"
DEAD = "dead"
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
