"""Ingest to one app of many: the seed's reports (bench/seed_reports.lua, wrk, 64 connections) to a
real ``serve`` watching one app, then to one app of a ``serve`` watching ``--apps`` apps (a
SUPERVISOR_CONFIG of that many, SQLite, each app its own ledger), in rounds that alternate
which goes first.

    python bench/apps_ingest.py [--apps 50] [--seconds 15] [--connections 64] [--rounds 2]

Prints reports/s and p50/p99 of each run, whether every acknowledged report is in the ledger it
was sent to, and the ratio of many to one. The issue's target: as fast as with one app.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ingest_seed import run_wrk, running_service, stored_events  # noqa: E402


def write_config(folder: Path, apps: int) -> Path:
    """A file of ``apps`` apps with no Sidekiq Redis (ingest needs none)."""
    tables = [f'[apps.app-{n:02d}]\nredis_url = ""\n' for n in range(apps)]
    path = folder / "apps.toml"
    path.write_text("\n".join(tables))
    return path


def one_run(apps: int, seconds: int, connections: int) -> dict[str, float]:
    """Reports to app ``apps // 2`` of a supervisor of ``apps`` apps (1: no configuration file)."""
    folder = Path(tempfile.mkdtemp(prefix="apps-ingest-"))
    database_url = f"sqlite:///{folder}/ledger.db"
    saved = os.environ.pop("SUPERVISOR_CONFIG", None)
    prefix, ledger = "", database_url
    if apps > 1:
        os.environ["SUPERVISOR_CONFIG"] = str(write_config(folder, apps))
        name = f"app-{apps // 2:02d}"
        prefix, ledger = f"/apps/{name}", f"sqlite:///{folder}/ledger.{name}.db"
    try:
        with running_service(database_url, 1) as (url, _server):
            result = run_wrk(url, seconds, connections, env={**os.environ, "PATH_PREFIX": prefix})
    finally:
        os.environ.pop("SUPERVISOR_CONFIG", None)
        if saved is not None:
            os.environ["SUPERVISOR_CONFIG"] = saved
    acknowledged = result["requests"] - result["non2xx"]
    return {
        **result,
        "rate": result["requests"] / result["seconds"],
        "lost": max(0, acknowledged - stored_events(ledger)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    runs: dict[int, list[dict[str, float]]] = {1: [], args.apps: []}
    for round_number in range(args.rounds):
        # Which goes first alternates, so that a drift of the machine's load favours neither.
        order = list(runs) if round_number % 2 == 0 else list(reversed(runs))
        for apps in order:
            runs[apps].append(one_run(apps, args.seconds, args.connections))
    print(f"{'apps':>5}  {'reports/s':>10}  {'p50 ms':>7}  {'p99 ms':>7}  {'lost':>5}   (each round)")
    for apps, done in runs.items():
        for run in done:
            p50, p99 = run["p50_us"] / 1000, run["p99_us"] / 1000
            print(f"{apps:>5}  {run['rate']:>10,.0f}  {p50:>7.1f}  {p99:>7.1f}  {int(run['lost']):>5}")
    one, many = (statistics.median(run["rate"] for run in runs[apps]) for apps in runs)
    print(f"median ratio, one app of {args.apps} to a single app: {many / one:.0%}  (target: as fast, 100%)")


if __name__ == "__main__":
    main()
