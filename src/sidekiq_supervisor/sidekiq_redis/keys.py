"""Every Sidekiq key name used here, in one place (see shared reference: Sidekiq's Redis layout)."""

from __future__ import annotations

QUEUES = "queues"


def queue(name: str) -> str:
    """The list a queue's waiting jobs live in; LPUSH adds, Sidekiq's BRPOP takes the oldest."""
    return f"queue:{name}"
