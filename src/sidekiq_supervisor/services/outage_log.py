"""Logging an outage once: a line when a dependency fails, a line when it is back, with a count.

During a database outage the writer fails a batch every few milliseconds; a traceback for each
filled 5.8 MB of log in a minute and buried the one line that mattered. The first failure is
logged with its reason (one line), later ones are counted, and recovery says how many failed and
for how long.
"""

from __future__ import annotations

import logging
import threading
import time


class OutageLog:
    """Logs state changes of one dependency (``what``), not every failure. Thread-safe."""

    def __init__(self, logger: logging.Logger, what: str, *, forget_after: float | None = None) -> None:
        """``forget_after``: for callers that never see a success, a failure this many seconds
        after the previous one starts a new outage (and is logged, with the count before it)."""
        self._logger = logger
        self._what = what
        self._forget_after = forget_after
        self._lock = threading.Lock()
        self._failures = 0
        self._since = 0.0
        self._last = 0.0

    def failed(self, error: BaseException) -> None:
        """One more failure; logged only when it starts an outage."""
        now = time.monotonic()
        with self._lock:
            earlier = 0
            if self._failures and self._forget_after is not None and now - self._last > self._forget_after:
                earlier, self._failures = self._failures, 0
            self._failures += 1
            self._last = now
            if self._failures > 1:
                return
            self._since = now
        suffix = f" ({earlier} failure{'' if earlier == 1 else 's'} before)" if earlier else ""
        self._logger.error("%s became unavailable: %s%s", self._what, first_line(error), suffix)

    def succeeded(self) -> None:
        """It works: logged only when it ends an outage."""
        if not self._failures:  # the usual case, without taking the lock
            return
        with self._lock:
            failures, self._failures = self._failures, 0
            lasted = time.monotonic() - self._since
        if failures:
            self._logger.warning(
                "%s is available again after %d failure%s over %.1f s",
                self._what,
                failures,
                "" if failures == 1 else "s",
                lasted,
            )


def first_line(error: BaseException) -> str:
    """The error's class and the first line of its message (drivers add SQL and hints below)."""
    text = str(getattr(error, "orig", None) or error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"
