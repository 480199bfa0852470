"""How a background loop of ``serve`` is doing (automatic recovery, alerts): the part they share."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from sidekiq_supervisor.domain.model import iso_from_micros, micros_from_seconds


def this_process() -> str:
    """How a loop's health names the process that ran a pass (several may serve one ledger)."""
    return f"this process ({socket.gethostname()}, pid {os.getpid()})"


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopHealth:
    """On or off, the interval, the last pass (when, whether this process led it, who did, its
    error) and when the next runs. Each loop adds what its pass did."""

    enabled: bool
    interval_seconds: float
    last_pass_at: float | None = None  # epoch seconds
    next_pass_at: float | None = None  # epoch seconds, while the loop runs
    led: bool | None = None  # False: another process held the lock and ran that pass
    leader: str | None = None  # who ran the last pass: this process (named), or "another"
    error: str | None = None  # why the last pass failed, if it did

    def loop_document(self) -> dict[str, Any]:
        """The shared part for scripts (the API, ``--json``): times in ISO 8601 UTC."""

        def when(seconds: float | None) -> str | None:
            return None if seconds is None else iso_from_micros(micros_from_seconds(seconds))

        return {
            "enabled": self.enabled,
            "interval_seconds": self.interval_seconds,
            "last_pass_at": when(self.last_pass_at),
            "next_pass_at": when(self.next_pass_at),
            "led_last_pass": self.led,
            "last_pass_leader": self.leader,
            "error": self.error,
        }
