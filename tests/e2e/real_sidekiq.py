"""A real Sidekiq process for end-to-end tests, and polling helpers.

Line 6 is Debian's ruby-sidekiq (6.4.1); lines 7 and 8 are the real 7.3.9 and 8.1.7 from
``../shared/sidekiq-versions`` (beside this checkout), selected by the environment its ``env.sh``
prints. Where that folder is absent the cases of lines 7 and 8 skip, saying how to get it; in CI
(``SUPERVISOR_CI=1``, set by ``.ci/run``) an absent line fails instead.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import redis_test_url
from tests.e2e.fault_sidekiq import HarnessError, wait_for
from tests.live_service import stop

APP = Path(__file__).parent / "sidekiq_app"
# Every Sidekiq line the project supports, as test parameters named by the line.
LINES = [pytest.param(6, id="sidekiq6"), pytest.param(7, id="sidekiq7"), pytest.param(8, id="sidekiq8")]


def stale_seconds(line: int) -> float:
    """A short ``SUPERVISOR_PROCESS_STALE_SECONDS`` for tests that still spans two heartbeats of the
    line: Sidekiq 6 beats every 5 s, 7 and 8 every 10 s."""
    return 8 if line == 6 else 15


def _versions_folder() -> Path:
    configured = os.environ.get("SIDEKIQ_VERSIONS_DIR")
    if configured:
        return Path(configured)
    checkout = Path(__file__).resolve().parents[2]
    return checkout.parent / "shared" / "sidekiq-versions"


def line_environment(line: int, *, rails7: bool = False) -> dict[str, str]:
    """The environment that runs Sidekiq ``line`` (6, 7 or 8), ActiveJob 7.2 with ``rails7``."""
    if line == 6 and not rails7:
        return {"SIDEKIQ_LINE": "6"}
    env_sh = _versions_folder() / "env.sh"
    if not env_sh.exists():
        reason = (
            f"Sidekiq {line} needs the real Sidekiq sources in {env_sh.parent} "
            "(or point SIDEKIQ_VERSIONS_DIR at them); the README's Set up section says how"
        )
        if os.environ.get("SUPERVISOR_CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    words = [str(line), *(["rails7"] if rails7 else [])]
    show = 'printf "%s\\0%s\\0%s" "${RUBYOPT:-}" "$PATH" "$SIDEKIQ_LINE"'
    script = f'eval "$({env_sh} {" ".join(words)})"; {show}'
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30, check=True)
    rubyopt, path, reported = done.stdout.split("\0")
    return {"RUBYOPT": rubyopt, "PATH": path, "SIDEKIQ_LINE": reported}


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
    # The jids are the line that is a JSON list: the gem may log after it, at exit (say, how many
    # reports its full buffer dropped), and a log line never starts with "[".
    return json.loads(next(line for line in reversed(done.stdout.splitlines()) if line.startswith("[")))


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


def sidekiq_command(app: str, threads: int) -> list[str]:
    """``sidekiq`` on queue ``default`` loading ``app`` (a file of ``sidekiq_app``), 1 s shutdown timeout."""
    return ["sidekiq", "-r", str(APP / app), "-c", str(threads), "-q", "default", "-t", "1"]


@contextmanager
def sidekiq(
    env: dict[str, str],
    workdir: Path,
    client: redis.Redis,
    name: str,
    *,
    app: str = "jobs.rb",
    threads: int = 3,
) -> Iterator[SidekiqProcess]:
    """A Sidekiq server on queue ``default``, once its first heartbeat is in Redis.

    ``app`` is the file of ``sidekiq_app`` it loads; ``env`` may select a line (``line_environment``).
    """
    log = workdir / f"sidekiq-{name}.log"
    before = client.smembers("processes")
    command = sidekiq_command(app, threads)
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


# systemd's RestartSec: the pause before a dead process is started again.
RESPAWN_SECONDS = 0.5


class RespawnedSidekiq:
    """A Sidekiq server kept up as systemd's ``Restart=always`` keeps a service up: each time the
    process dies, a new one starts (a new pid, so a new identity). :attr:`deaths` holds the exit
    code of each process that died by itself (not stopped by :meth:`stop`)."""

    def __init__(self, env: dict[str, str], workdir: Path, name: str, command: list[str]) -> None:
        self._env = {**os.environ, **env}
        self._workdir = workdir
        self._name = name
        self._command = command
        self._stopping = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self.deaths: list[int] = []
        self.logs: list[Path] = []
        self._thread = threading.Thread(target=self._keep_up, name=f"respawn-{name}", daemon=True)
        self._thread.start()

    def _keep_up(self) -> None:
        while not self._stopping.is_set():
            log = self._workdir / f"sidekiq-{self._name}-{len(self.logs)}.log"
            self.logs.append(log)
            with log.open("wb") as out:
                process = subprocess.Popen(
                    self._command, env=self._env, stdout=out, stderr=subprocess.STDOUT, cwd=self._workdir
                )
            self._process = process
            while process.poll() is None and not self._stopping.is_set():
                with suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=0.2)
            if self._stopping.is_set():
                return
            self.deaths.append(process.returncode)
            self._stopping.wait(RESPAWN_SECONDS)

    def stop(self) -> None:
        """Stop respawning, and stop the process running now."""
        self._stopping.set()
        self._thread.join(timeout=10)
        if self._process is not None:
            stop(self._process)

    def log_text(self) -> str:
        return "".join(log.read_text(errors="replace")[-2000:] for log in self.logs[-2:] if log.exists())


@contextmanager
def respawned_sidekiq(
    env: dict[str, str], workdir: Path, name: str, *, app: str = "jobs.rb", threads: int = 3
) -> Iterator[RespawnedSidekiq]:
    """A Sidekiq server on queue ``default`` that comes back each time it dies, until the end."""
    kept = RespawnedSidekiq(env, workdir, name, sidekiq_command(app, threads))
    try:
        yield kept
    finally:
        kept.stop()


def sidekiq_env(api, client: str = "seed", line: int = 6) -> dict[str, str]:
    """The environment of a Sidekiq of ``line`` reporting to the service ``api`` through ``client``
    (the seed's middlewares or the gem)."""
    host = str(api.base_url).rstrip("/")
    return {
        **line_environment(line),
        "REDIS_URL": redis_test_url(),
        "SUPERVISOR_CLIENT": client,
        "SIDEKIQ_SUPERVISOR_HOST": host,
        "SIDEDIQ_SUPERVISOR_HOST": host,  # the seed's client middleware has this typo
        "http_proxy": "",
        "HTTP_PROXY": "",
    }


def job_status(api, jid: str) -> str | None:
    """The ledger's status of ``jid``, or None while it knows nothing of it."""
    response = api.get(f"/api/v1/jobs/{jid}")
    return response.json()["status"] if response.status_code == 200 else None


def events(api, jid: str) -> list[dict]:
    """The ledger's history of ``jid`` (empty while it knows nothing of it)."""
    response = api.get(f"/api/v1/jobs/{jid}/history")
    return response.json()["history"] if response.status_code == 200 else []
