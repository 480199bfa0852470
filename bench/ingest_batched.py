"""Batched ingest: wrk posts the gem's batches to ``POST /api/v1/events`` of a real
``sidekiq-supervisor serve``, then every acknowledged event is looked up.

    python bench/ingest_batched.py [--seconds 15] [--batch-size 500] [--connections 4]
                                   [--database-url URL] [--workers N]

Each batch holds whole jobs (queued, started with the worker's identity, complete), as the gem
sends them (its default batch is 500 reports). Without ``--database-url`` it runs on a fresh
SQLite file. Prints events/s, p50/p99 latency per batch, the service's peak RSS, and whether
every event of a 2xx-acknowledged batch is stored. Needs Debian's ``wrk``.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from ingest_seed import peak_rss_mib, run_wrk, running_service, stored_events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--database-url")
    parser.add_argument("--workers", type=int, default=1, help="serve --workers")
    args = parser.parse_args()
    database_url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='ingest-batched-')}/bench.db"
    with running_service(database_url, args.workers) as (url, server):
        before = stored_events(database_url)
        wrk_env = {**os.environ, "BATCH_SIZE": str(args.batch_size)}
        result = run_wrk(url, args.seconds, args.connections, "batch_reports.lua", wrk_env)
        stored = stored_events(database_url) - before
        rss = peak_rss_mib(server.pid)
    per_batch = int(result["events"])
    acknowledged = int(result["requests"] - result["non2xx"]) * per_batch
    print(f"database / workers  {database_url.split(':')[0]} / {args.workers}")
    print(f"batch               {per_batch} events, {args.connections} connections")
    print(f"events/s            {result['requests'] * per_batch / result['seconds']:,.0f}")
    print(f"batch p50 / p99     {result['p50_us'] / 1000:.1f} ms / {result['p99_us'] / 1000:.1f} ms")
    print(f"non-2xx / errors    {int(result['non2xx'])} / {int(result['errors'])}")
    print(f"service peak RSS    {rss:,.0f} MiB")
    verdict = "every acknowledged event stored" if stored >= acknowledged else "EVENTS MISSING"
    print(f"stored              {stored:,} of {acknowledged:,} acknowledged ({verdict})")


if __name__ == "__main__":
    main()
