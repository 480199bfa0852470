"""A real ``sidekiq-supervisor serve`` subprocess that a test can kill, terminate and restart.

``tests.live_service.running_service`` hides its process; fault tests need it: to send SIGKILL
or SIGTERM at a chosen moment, and to read the exit code.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.live_service import free_port, serve_command, service_environment, wait_until_healthy

STARTUP_SECONDS = 30


class ServiceProcess:
    """One service process on ``database_url``; each :meth:`start` gets a new port and log."""

    def __init__(self, database_url: str, workdir: Path, **env: str) -> None:
        self.database_url = database_url
        self.workdir = workdir
        self.env = service_environment(DATABASE_URL=database_url, **env)
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.log = workdir / "service-0.log"
        self._starts = 0

    @property
    def pid(self) -> int:
        """The running process's id."""
        assert self.process is not None, "the service is not started"
        return self.process.pid

    def start(self) -> None:
        """Start the service and wait until ``/healthz`` answers 200."""
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = self.workdir / f"service-{self._starts}.log"
        self._starts += 1
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                serve_command(port), env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
            )
        self._wait_until_healthy()

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a power cut would end it (no shutdown code runs)."""
        self.signal(signal.SIGKILL)
        self.wait(10)

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the process."""
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """The exit code, waiting at most ``timeout`` seconds."""
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self, grace: float = 5) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; nothing if it already ended."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def full_log(self) -> str:
        """Everything the service logged."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_text(self) -> str:
        """The end of the current log, for failure messages."""
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def _wait_until_healthy(self) -> None:
        assert self.process is not None
        wait_until_healthy(self.process, self.url, self.log_text, STARTUP_SECONDS)


@contextmanager
def service_process(database_url: str, workdir: Path, **env: str) -> Iterator[ServiceProcess]:
    """A started service, stopped at the end whatever the test did to it."""
    service = ServiceProcess(database_url, workdir, **env)
    service.start()
    try:
        yield service
    finally:
        service.stop()
