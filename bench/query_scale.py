"""Time every read of a large ledger: the JobManager's questions and the HTTP read routes.

    python bench/query_scale.py --database-url URL [--runs 3] [--only REGEX] [--filters none,0.1%]
                                [--json out.json] [--compare before.json]

Load the ledger first with ``bench/load_ledger.py``. For each JobManager list (queued,
uncompleted, completed, all, and the two duration lists), each HTTP read route
(``GET /api/v1/jobs`` per status, ``/durations``, ``/stats``, ``/liveness``, ``/recoveries``,
``/alerts``) and each dashboard page (``/``, ``/jobs``, a job, ``/durations`` per window,
``/restart``'s preview, ``/recoveries``, ``/alerts``; the app runs in-process under the ASGI
TestClient, whose start-up migrates the ledger to head), with each filter of ``FILTERS``
(none, the loader's 0.1% marker, a job_class, a queue, a job_class with the marker, and the
loader's rare class and rare queue of 0.01%), it times
the first page (50 rows), the second page through the cursor, the exact count, the estimated
count (when the ledger offers one) and the duration summary. "cold" is the first run in this
process (whatever the OS page cache holds); "warm" is the median of the next ``--runs``. A
query whose first run takes over 2 s is run once more only. ``answer`` is a short fingerprint
of the result, so that runs before and after a change can be checked for equal answers.
Prints the ledger's size on disk, and beside each warm figure whether it meets the target of
the issue "Performance under real use" (100 ms).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import make_url

from sidekiq_supervisor.services.job_manager import JobManager
from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.store.engine import make_engine
from sidekiq_supervisor.store.migrate import upgrade
from sidekiq_supervisor.web.app import create_app

MARKER = "qzx-marker-7731"  # bench/load_ledger.py puts it, in mixed case, in 0.1% of the jobs
FILTERS: dict[str, dict[str, str]] = {
    "none": {},
    "0.1%": {"filter": MARKER},
    "class": {"job_class": "ChargeCardJob"},
    "queue": {"queue": "reports"},
    "cls+.1%": {"filter": MARKER, "job_class": "ChargeCardJob"},
    # bench/load_ledger.py's class and queue of 0.01% of the jobs: rare filters no index narrows.
    "rareCls": {"job_class": "LegacyFaxDeliveryJob"},
    "rareQ": {"queue": "fax"},
    # One character, as someone starts typing: no trigram serves it, so every row is checked.
    "1char": {"filter": "@"},
    # Common needles: one in a tenth of the jobs (the trigram index serves it), and two
    # characters in 3.6% (none serves them).
    "10%": {"filter": "example"},
    "2char": {"filter": "ab"},
}
LISTS = ["queued_jobs", "uncompleted_jobs", "completed_jobs", "all_jobs"]
DURATIONS = {"queued_to_completion_duration": "queued", "completed_jobs_duration": "started"}
PAGE = 50
TARGET_MS = 100
# Dashboard pages without a filter (those with one are timed per filter below).
PAGES = [
    "/",
    "/durations",
    "/durations?window=1h",
    "/durations?window=24h",
    "/durations?window=7d",
    "/durations?job_class=ChargeCardJob&from=queued",
    "/recoveries",
    "/alerts",
]


def timed(action: Callable[[], Any], runs: int) -> tuple[float, float, str]:
    """(cold ms, warm median ms, answer fingerprint) of ``action``."""
    began = time.perf_counter()
    answer = action()
    cold = (time.perf_counter() - began) * 1000
    warm = []
    for _ in range(1 if cold > 2000 else runs):
        began = time.perf_counter()
        action()
        warm.append((time.perf_counter() - began) * 1000)
    return cold, statistics.median(warm), fingerprint(answer)


def fingerprint(answer: Any) -> str:
    """A short text that changes when the answer does."""
    if isinstance(answer, list):
        return f"{len(answer)} rows, first {answer[0] if answer else None}"
    return str(answer)[:60]


def manager_cases(manager: JobManager) -> list[tuple[str, str, Callable[[], Any]]]:
    """(question, filter, action) for every JobManager question."""
    cases = []
    ledger = manager.ledger
    for name in [*LISTS, *DURATIONS]:
        for label, keywords in FILTERS.items():
            answer = getattr(manager, name)(
                keywords.get("filter"), job_class=keywords.get("job_class"), queue=keywords.get("queue")
            )
            flt = answer.filter
            first = ledger.page(flt, limit=PAGE)

            def page1(flt: Any = flt) -> Any:
                return [job.jid for job in ledger.page(flt, limit=PAGE).jobs]

            def page2(flt: Any = flt, cursor: int | None = first.next_cursor) -> Any:
                return [job.jid for job in ledger.page(flt, limit=PAGE, cursor=cursor).jobs]

            cases.append((f"{name} page 1", label, page1))
            if first.next_cursor is not None:  # a one-page answer has no second page to time
                cases.append((f"{name} page 2", label, page2))
            cases.append((f"{name} count", label, answer.count))
            if hasattr(answer, "estimated_count"):
                cases.append((f"{name} estimated count", label, answer.estimated_count))
            if name in DURATIONS:
                cases.append((f"{name} summary", label, answer.summary))
    return cases


def http_cases(client: TestClient) -> list[tuple[str, str, Callable[[], Any]]]:
    """(route, filter, action) for every HTTP read route."""

    def get(path: str, **params: Any) -> Any:
        response = client.get(path, params={k: v for k, v in params.items() if v is not None})
        response.raise_for_status()
        body = response.json()
        if "data" in body:
            body["data"] = [job["jid"] for job in body["data"]]
        return body

    def route(path: str, key: str, **params: Any) -> Callable[[], Any]:
        return lambda: get(path, **params)[key]

    cases = []
    for label, keywords in FILTERS.items():
        params = {
            "q": keywords.get("filter"),
            "job_class": keywords.get("job_class"),
            "queue": keywords.get("queue"),
            "limit": PAGE,
        }
        for status in ["queued", "uncompleted", "completed", "all"]:
            cursor = get("/api/v1/jobs", status=status, **params)["next_cursor"]
            first = route("/api/v1/jobs", "data", status=status, **params)
            second = route("/api/v1/jobs", "data", status=status, cursor=cursor, **params)
            cases += [(f"GET /jobs?status={status} page 1", label, first)]
            if cursor is not None:
                cases += [(f"GET /jobs?status={status} page 2", label, second)]
        for origin in DURATIONS.values():
            page = route("/api/v1/durations", "data", summary="false", **{"from": origin}, **params)
            summary = route("/api/v1/durations", "summary", **{"from": origin}, **params)
            cases += [(f"GET /durations?from={origin}&summary=false", label, page)]
            cases += [(f"GET /durations?from={origin} (summary)", label, summary)]
    cases.append(("GET /stats", "none", lambda: get("/api/v1/stats")))
    cases.append(("GET /liveness", "none", lambda: len(get("/api/v1/liveness")["data"])))
    cases.append(("GET /recoveries", "none", lambda: get("/api/v1/recoveries")["data"]))
    cases.append(("GET /alerts", "none", lambda: sorted(get("/api/v1/alerts"))))
    return cases


def page_cases(client: TestClient) -> list[tuple[str, str, Callable[[], Any]]]:
    """(page, filter, action) for every dashboard page; the answer is the page's length."""

    def page(path: str, **params: Any) -> Callable[[], Any]:
        def load() -> Any:
            response = client.get(path, params={k: v for k, v in params.items() if v is not None})
            response.raise_for_status()
            return f"{len(response.text):,} characters"

        return load

    cases = [(f"page {path}", "none", page(path)) for path in PAGES]
    newest = client.get("/api/v1/jobs", params={"limit": 1}).json()["data"]
    if newest:
        cases.append(("page /jobs/{jid}", "none", page(f"/jobs/{newest[0]['jid']}")))
    for label, keywords in FILTERS.items():
        params = {
            "q": keywords.get("filter"),
            "job_class": keywords.get("job_class"),
            "queue": keywords.get("queue"),
        }
        for status in ["uncompleted", "completed", "all"]:
            cases.append((f"page /jobs?status={status}", label, page("/jobs", status=status, **params)))
        if set(keywords) <= {"filter"}:  # the restart form filters by arguments only
            cases.append(("page /restart (preview)", label, page("/restart", q=keywords.get("filter"))))
    return cases


def disk_size(url: str, engine: Any) -> list[str]:
    """Lines describing the ledger's size on disk."""
    if engine.dialect.name == "sqlite":
        path = Path(make_url(url).database or "")
        files = [p for p in (path, Path(f"{path}-wal")) if p.exists()]
        return [f"{p.name}: {p.stat().st_size / 2**20:,.0f} MiB" for p in files]
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i') ORDER BY 2 DESC"
        ).all()
        total = connection.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one()
    return [f"database: {total / 2**20:,.0f} MiB"] + [
        f"  {name}: {size / 2**20:,.0f} MiB" for name, size in rows
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", help="regular expression on the question's name")
    parser.add_argument("--filters", help="comma-separated filter labels to run (default: all)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--compare", help="results of an earlier run (--json) to print beside these")
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/13",
        help="Sidekiq's Redis (the liveness and restart reads)",
    )
    args = parser.parse_args()
    engine = make_engine(args.database_url)
    began = time.perf_counter()
    upgrade(engine)
    print(f"schema at head after {time.perf_counter() - began:.1f} s")
    earlier = json.loads(Path(args.compare).read_text()) if args.compare else {}
    results: dict[str, list[Any]] = {}
    print(
        f"{'question':52} {'filter':7} {'cold ms':>9} {'warm ms':>9} {'≤100':>5}  {'before warm':>11}  answer"
    )
    settings = Settings(database_url=args.database_url, redis_url=args.redis_url)
    with TestClient(create_app(settings)) as client:
        cases = [*manager_cases(JobManager(engine)), *http_cases(client), *page_cases(client)]
        for question, label, action in cases:
            if args.only and not re.search(args.only, question):
                continue
            if args.filters and label not in args.filters.split(","):
                continue
            cold, warm, answer = timed(action, args.runs)
            key = f"{question} [{label}]"
            results[key] = [cold, warm, answer]
            before = f"{earlier[key][1]:11.1f}" if key in earlier else " " * 11
            same = "" if key not in earlier or earlier[key][2] == answer else "  (ANSWER DIFFERS)"
            met = "yes" if warm <= TARGET_MS else "NO"
            print(
                f"{question:52} {label:7} {cold:9.1f} {warm:9.1f} {met:>5}  {before}  {answer}{same}",
                flush=True,
            )
    for line in disk_size(args.database_url, engine):
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    engine.dispose()


if __name__ == "__main__":
    main()
