"""The real service as a subprocess (``sidekiq-supervisor serve``), for end-to-end tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

STARTUP_SECONDS = 20
# The variable tests/conftest.py sets for the suite's in-process apps, which a served service drops.
IN_PROCESS_WRITER = "SUPERVISOR_INGEST_WRITER"


@dataclass
class Service:
    """A running service: its base URL, and its log for failure messages."""

    url: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_command(port: int, host: str = "127.0.0.1", *, workers: int = 1) -> list[str]:
    """``sidekiq-supervisor serve``, preferably the script installed beside this Python."""
    args = ["serve", "--host", host, "--port", str(port), "--log-level", "warning", "--workers", str(workers)]
    script = Path(sys.executable).parent / "sidekiq-supervisor"
    if script.exists():
        return [str(script), *args]
    found = shutil.which("sidekiq-supervisor")
    return [found, *args] if found else [sys.executable, "-m", "sidekiq_supervisor", *args]


@contextmanager
def running_service(
    database_url: str, workdir: Path, host: str = "127.0.0.1", *, workers: int = 1, **env: str
) -> Iterator[Service]:
    """The service on ``database_url`` (``serve --workers``), healthy, stopped (SIGTERM, then
    SIGKILL) at the end."""
    port = free_port()
    service = Service(f"http://127.0.0.1:{port}", workdir / "service.log")
    environment = service_environment(DATABASE_URL=database_url, **env)
    with service.log.open("wb") as log:
        command = serve_command(port, host, workers=workers)
        process = subprocess.Popen(
            command, env=environment, stdout=log, stderr=subprocess.STDOUT, cwd=workdir
        )
    try:
        wait_until_healthy(process, service.url, service.log_text)
        yield service
    finally:
        stop(process)


def service_environment(**env: str) -> dict[str, str]:
    """The environment of a served service: this one's, with the settings the suite gives its
    in-process apps (``IN_PROCESS_WRITER``) back at their defaults, and ``env`` on top."""
    inherited = {name: value for name, value in os.environ.items() if name != IN_PROCESS_WRITER}
    return {**inherited, **env}


def stop(process: subprocess.Popen[bytes], grace: float = 15) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; nothing if it already ended."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def wait_until_healthy(
    process: subprocess.Popen[bytes], url: str, log_text: Callable[[], str], seconds: float = STARTUP_SECONDS
) -> None:
    """Return once ``url``/healthz answers 200; fail the test (with the log) if it never does."""
    deadline = time.monotonic() + seconds
    with httpx2.Client(base_url=url, timeout=2, trust_env=False) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the service exited with {process.returncode}:\n{log_text()}")
            try:
                if client.get("/healthz").status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.1)
    pytest.fail(f"no 200 from /healthz within {seconds} s:\n{log_text()}")
