"""The wall clock, in the ledger's unit. Kept apart so the domain stays free of I/O."""

from __future__ import annotations

import time

from sidekiq_supervisor.domain.model import Micros


def now_micros() -> Micros:
    """The current time in epoch microseconds."""
    return time.time_ns() // 1000
