"""A real Sidekiq process (Debian's ruby-sidekiq) for end-to-end tests, and polling helpers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.e2e.fault_sidekiq import HarnessError, wait_for
from tests.live_service import stop

APP = Path(__file__).parent / "sidekiq_app"


def require_sidekiq(*gems: str) -> None:
    """Skip unless ``ruby`` and Sidekiq (plus ``gems``) load; CI installs them all."""
    if shutil.which("ruby") is None or shutil.which("sidekiq") is None:
        pytest.skip("needs Debian's ruby and ruby-sidekiq (apt-get install ruby-sidekiq; .ci/run does)")
    script = "; ".join(f'require "{name}"' for name in ("sidekiq", *gems))
    probe = subprocess.run(["ruby", "-e", script], capture_output=True, text=True, timeout=60, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot load {('sidekiq', *gems)}: {probe.stderr.strip()[:200]}")


def wait_until(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail the test naming ``what`` after ``timeout``."""
    try:
        return wait_for(what, check, timeout, poll=0.2)
    except HarnessError as exc:
        pytest.fail(str(exc))


def enqueue(env: dict[str, str], jobs: list[tuple[str, list[Any]]]) -> list[str]:
    """Push jobs through Sidekiq's client (client middlewares run); their jids."""
    done = subprocess.run(
        ["ruby", str(APP / "enqueue.rb"), json.dumps(jobs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


class SidekiqProcess:
    """One ``sidekiq`` server process."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@contextmanager
def sidekiq(env: dict[str, str], workdir: Path, client: redis.Redis, name: str) -> Iterator[SidekiqProcess]:
    """A Sidekiq server on queue ``default`` with 3 threads, once its first heartbeat is in Redis."""
    log = workdir / f"sidekiq-{name}.log"
    before = client.smembers("processes")
    command = ["sidekiq", "-r", str(APP / "jobs.rb"), "-c", "3", "-q", "default", "-t", "1"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, cwd=workdir
        )
    running = SidekiqProcess(process, log)
    try:
        wait_until(f"sidekiq {name} beats", lambda: client.smembers("processes") - before, timeout=30)
        yield running
    finally:
        stop(process)
