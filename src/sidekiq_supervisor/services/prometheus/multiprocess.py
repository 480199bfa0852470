"""prometheus_client's multi-process mode, for ``serve --workers N``.

The workers share one port and a scrape reaches one of them, so each counting only its own
reports would make every scrape tell a different worker's story. With ``PROMETHEUS_MULTIPROC_DIR``
set before prometheus_client is imported, every process keeps its instruments' values in files
there, and the worker that answers a scrape adds all of them up: counters and histograms summed
(a worker that exited still counts, so totals never go back), the queue gauges summed over the
live workers. ``serve`` makes a fresh directory when it starts more than one worker (or empties
the one you set) and removes the one it made when it stops.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

ENVIRONMENT = "PROMETHEUS_MULTIPROC_DIR"
# prometheus_client's files: <type>_[<gauge mode>_]<pid>.db
FILES = ("counter_*.db", "gauge_*.db", "histogram_*.db", "summary_*.db")


def shared_directory() -> Path | None:
    """The directory of multi-process mode, or None when this process counts alone."""
    path = os.environ.get(ENVIRONMENT)
    return Path(path) if path else None


def process_collector(registry: CollectorRegistry) -> Collector:
    """What a scrape reads the instruments from: ``registry`` alone, or every worker's files."""
    directory = shared_directory()
    if directory is None:
        return registry
    # prometheus_client leaves its multi-process functions unannotated.
    return MultiProcessCollector(None, str(directory))  # type: ignore[no-untyped-call]


def worker_started() -> None:
    """In multi-process mode, forget the queue gauges of workers that died without saying so (a
    crash, SIGKILL): their files would add a stale queue to the live workers' (counters stay)."""
    directory = shared_directory()
    if directory is None:
        return
    for path in directory.glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            mark_process_dead(int(pid), str(directory))  # type: ignore[no-untyped-call]  # as above


def worker_stopping() -> None:
    """In multi-process mode, take this worker's queue gauges out of the sums."""
    directory = shared_directory()
    if directory is not None:
        mark_process_dead(os.getpid(), str(directory))  # type: ignore[no-untyped-call]  # as above


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


@contextmanager
def shared_directory_for(workers: int) -> Iterator[Path | None]:
    """Multi-process mode for ``workers`` processes started inside this block: a fresh directory
    (removed at the end) when there are several, or the one ``PROMETHEUS_MULTIPROC_DIR`` names,
    emptied of a previous run's files. Call it before the workers import prometheus_client."""
    given = shared_directory()
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        for pattern in FILES:
            for stale in given.glob(pattern):
                stale.unlink(missing_ok=True)
        yield given
        return
    if workers <= 1:
        yield None
        return
    made = Path(tempfile.mkdtemp(prefix="sidekiq-supervisor-metrics-"))
    os.environ[ENVIRONMENT] = str(made)
    try:
        yield made
    finally:
        os.environ.pop(ENVIRONMENT, None)
        shutil.rmtree(made, ignore_errors=True)
