"""Time GET /metrics on a large ledger: what a scrape waits for, and the reading behind it.

    python bench/metrics.py --database-url URL [--redis-url URL] [--scrapes 30] [--workers 1]

Load the ledger first with ``bench/load_ledger.py`` (``--jobs 1000000``: 45,000 of its jobs are
uncompleted). It scrapes a real ``sidekiq-supervisor serve`` over HTTP on one kept-alive
connection, as Prometheus does. With ``--redis-url`` (an empty database index will do) each
reading of the ledger classifies every uncompleted job against Sidekiq's Redis, as it does in
production; without one that part is left out.

Printed, in milliseconds:

- the first scrape of the service, which waits for its first reading of the ledger;
- ``--scrapes`` scrapes a second apart with the default cache (10 s): most answer from a fresh
  reading, every tenth or so finds it stale and starts the next one once it has answered;
- as many scrapes 0.1 s apart with a cache of 0 s: each starts a reading that is still running
  when the next one comes, the worst case (the reading's thread competes for the interpreter);
- the reading itself (``read_ledger_figures``, in this process), and each of its parts;
- the answer's size.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx2
from ingest_seed import running_service

from sidekiq_supervisor.services.job_manager import JobManager
from sidekiq_supervisor.services.prometheus.ledger_figures import (
    BUSIEST_WINDOW,
    liveness_counts,
    read_ledger_figures,
)
from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.sidekiq_redis import connection as redis_connection
from sidekiq_supervisor.store import figures
from sidekiq_supervisor.store.engine import make_engine


def ms(action: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = action()
    return (time.perf_counter() - began) * 1000, result


def spread(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    median = statistics.median(ordered)
    return f"median {median:6.1f}  p95 {p95:6.1f}  max {ordered[-1]:6.1f}  (n={len(ordered)})"


def scrapes(args: argparse.Namespace, cache_seconds: float, pause: float) -> tuple[float, list[float], bytes]:
    """The first scrape of a new service, then ``--scrapes`` more ``pause`` s apart, and the last answer."""
    os.environ["REDIS_URL"] = args.redis_url
    os.environ["SUPERVISOR_METRICS_CACHE_SECONDS"] = str(cache_seconds)
    os.environ["SUPERVISOR_RETENTION_DAYS"] = "0"  # the loaded ledger is months old: keep it
    # This process's own collector once took 70 ms in the middle of a timed scrape.
    gc.collect()
    gc.disable()
    with (
        running_service(args.database_url, args.workers) as (url, _server),
        httpx2.Client(base_url=url, timeout=30, trust_env=False) as client,
    ):

        def scrape() -> bytes:
            response = client.get("/metrics")
            response.raise_for_status()
            return response.content

        first, body = ms(scrape)
        times = []
        for _ in range(args.scrapes):
            time.sleep(pause)
            took, body = ms(scrape)
            times.append(took)
    gc.enable()
    return first, times, body


def reading_parts(args: argparse.Namespace) -> list[tuple[str, float]]:
    """Each part of one reading, timed alone (warm), in this process."""
    settings = Settings(database_url=args.database_url, redis_url=args.redis_url)
    engine = make_engine(settings.database_url)
    checker = JobManager.on(engine, redis_connection.connect(settings.redis_url), settings).liveness
    parts: list[tuple[str, float]] = []
    with engine.connect() as connection:
        parts.append(("jobs per status", ms(lambda: figures.jobs_per_status(connection))[0]))
        took, chunks = ms(lambda: list(figures.uncompleted_jobs(connection)))
        uncompleted = [job for chunk in chunks for job in chunk]
        parts.append((f"uncompleted jobs ({len(uncompleted):,})", took))
        window = ms(lambda: figures.recent_class_counts(connection, BUSIEST_WINDOW))[0]
        parts.append((f"classes of the newest {BUSIEST_WINDOW:,} jobs", window))
    if settings.redis_url:
        liveness = ms(lambda: liveness_counts(checker, uncompleted))[0]
        parts.append(("their liveness (Redis snapshot + rules)", liveness))
    whole = [ms(lambda: read_ledger_figures(engine, checker))[0] for _ in range(3)]
    parts.append(("the whole reading (median of 3)", statistics.median(whole)))
    engine.dispose()
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", default="", help="Sidekiq's Redis (an empty database index will do)")
    parser.add_argument("--scrapes", type=int, default=30)
    parser.add_argument("--workers", type=int, default=1, help="serve --workers")
    args = parser.parse_args()

    first, usual, body = scrapes(args, cache_seconds=10, pause=1.0)
    print(f"first scrape (waits for the first reading):      {first:6.1f} ms")
    print(f"scrapes 1 s apart, cache 10 s:                   {spread(usual)} ms")
    _first, busy, _body = scrapes(args, cache_seconds=0, pause=0.1)
    print(f"scrapes 0.1 s apart, cache 0 s (reading beside): {spread(busy)} ms")
    for name, took in reading_parts(args):
        print(f"  reading: {name:44} {took:8.1f} ms")
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    print(f"answer: {len(body):,} bytes, {series} series")


if __name__ == "__main__":
    main()
