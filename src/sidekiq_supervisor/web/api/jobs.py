"""Read the ledger over HTTP: the JSON twin of the JobManager, and the restart action."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from functools import partial
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from sidekiq_supervisor.domain.durations import DurationOrigin
from sidekiq_supervisor.domain.filters import MAX_FILTER_LENGTH
from sidekiq_supervisor.domain.liveness import Liveness
from sidekiq_supervisor.domain.model import Selection
from sidekiq_supervisor.domain.recovery import COUNTED_HOURS
from sidekiq_supervisor.services.ledger import JobFilter, Page
from sidekiq_supervisor.services.restart import RestartFailed, RestartOutcome, outcome_lines
from sidekiq_supervisor.web.api.auth import require_api_token
from sidekiq_supervisor.web.api.openapi_errors import (
    NO_HISTORY,
    NO_NOTIFY_URL,
    RESTART_FAILED,
    SIDEKIQ_UNAVAILABLE,
    error_responses,
)
from sidekiq_supervisor.web.api.presenters import (
    event_document,
    job_document,
    json_response,
    summary_document,
)
from sidekiq_supervisor.web.deps import LedgerDep, ManagerDep, ServicesDep
from sidekiq_supervisor.web.errors import retry_later

router = APIRouter(prefix="/api/v1", tags=["jobs"], dependencies=[Depends(require_api_token)])


# NUL can match nothing, and PostgreSQL refuses it in any text parameter.
NO_NUL = r"^[^\x00]*$"
Needle = Annotated[
    str | None,
    Query(
        max_length=MAX_FILTER_LENGTH,
        pattern=NO_NUL,
        description="Case-insensitive substring of the arguments.",
    ),
]
Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[int | None, Query(ge=0, le=2**63 - 1, description="`next_cursor` of the previous page.")]
Name = Annotated[str | None, Query(max_length=255, pattern=NO_NUL)]


@router.get("/jobs", responses=error_responses(401, 422, 503))
async def list_jobs(
    ledger: LedgerDep,
    status: Selection = Selection.ALL,
    q: Needle = None,
    job_class: Name = None,
    queue: Name = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """A page of jobs, newest first, with the cursor of the next page."""
    job_filter = JobFilter(status=status.status, needle=q or None, job_class=job_class, queue=queue)
    page = await run_in_threadpool(ledger.page, job_filter, limit=limit, cursor=cursor)
    return json_response({"data": [job_document(job) for job in page.jobs], "next_cursor": page.next_cursor})


@router.get("/jobs/{job_id}", responses=error_responses(401, 404, 503))
async def get_job(job_id: str, ledger: LedgerDep) -> Response:
    """One job with its history (every report, in event-time order)."""
    job = await run_in_threadpool(ledger.get, job_id)
    if job is None:
        raise HTTPException(404, f"no job with jid {job_id!r}")
    history = await run_in_threadpool(ledger.history, job_id)
    return json_response({**job_document(job), "history": [event_document(e) for e in history]})


@router.get("/jobs/{job_id}/history", responses=error_responses(401, 404, 503, describe={404: NO_HISTORY}))
async def get_history(job_id: str, ledger: LedgerDep) -> Response:
    """A jid's reports, kept even after a restart deleted the job itself."""
    history = await run_in_threadpool(ledger.history, job_id)
    if not history:
        raise HTTPException(404, f"no reports for jid {job_id!r}")
    return json_response({"jid": job_id, "history": [event_document(e) for e in history]})


@router.get("/durations", responses=error_responses(401, 422, 503))
async def durations(
    ledger: LedgerDep,
    origin: Annotated[DurationOrigin, Query(alias="from")] = DurationOrigin.QUEUED,
    q: Needle = None,
    job_class: Name = None,
    queue: Name = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    summary: bool = True,
    exact: Annotated[
        bool,
        Query(description="An exact summary without an arguments filter (slow at millions of jobs)."),
    ] = False,
) -> Response:
    """Completed jobs with their durations from ``from`` (queued or started) to completion.

    Without an arguments filter (``q``), the summary (of every completed job, or of a class, a
    queue or both) comes from the roll-ups at once: count and mean exact, percentiles estimated
    (``"percentiles_estimated": true``); ``exact=true`` computes it from the jobs instead. An
    arguments filter is summarised from the matching jobs."""
    job_filter = JobFilter(needle=q or None, job_class=job_class, queue=queue, duration_from=origin)
    # The page and the summary are read at once, each on a connection of its own: with an
    # arguments filter each reads the matching jobs (70-80 and 45 ms at ten million jobs on
    # PostgreSQL), and the answer waits for the longer one only.
    reading_page = run_in_threadpool(ledger.page, job_filter, limit=limit, cursor=cursor)
    if not summary:
        return json_response(_durations_body(origin, await reading_page))
    summarising = run_in_threadpool(partial(ledger.duration_summary, origin, job_filter, exact=exact))
    page, found = await asyncio.gather(reading_page, summarising)
    body = _durations_body(origin, page)
    body["summary"] = summary_document(found)
    # Pruned jobs live on per class and queue only, and those pruned before 0012 without their
    # queue: no summary of them for an arguments or queue filter.
    pruned = None
    if q is None and queue is None:
        pruned = summary_document(await run_in_threadpool(ledger.pruned_summary, origin, job_class))
    body["pruned_summary"] = pruned
    return json_response(body)


def _durations_body(origin: DurationOrigin, page: Page) -> dict[str, object]:
    return {
        "from": origin.value,
        "data": [job_document(job) for job in page.jobs],
        "next_cursor": page.next_cursor,
    }


@router.get("/stats", responses=error_responses(401, 503))
async def stats(ledger: LedgerDep) -> Response:
    """How many jobs have each status."""
    counts = await run_in_threadpool(ledger.status_counts)
    by_status = {status.value: count for status, count in counts.items()}
    return json_response({"jobs": {**by_status, "total": sum(counts.values())}})


@router.get("/liveness", responses=error_responses(401, 422, 503, describe={503: SIDEKIQ_UNAVAILABLE}))
async def liveness(
    manager: ManagerDep, q: Needle = None, limit: Limit = 50, cursor: Cursor = None
) -> Response:
    """A page of uncompleted jobs, newest first, each with where it stands in Sidekiq (running,
    retrying, orphaned, unknown), the cursor of the next page, and how many of this page have
    each liveness (``page_counts``; the page's only: counting every job would classify them all)."""
    page = await run_in_threadpool(
        partial(manager.uncompleted_jobs_liveness_page, q, limit=limit, cursor=cursor)
    )
    counts = dict.fromkeys((liveness.value for liveness in Liveness), 0)
    for row in page.report:
        counts[row.verdict.liveness.value] += 1
    return json_response(
        {
            "data": [
                {"jid": row.job.jid, "liveness": row.verdict.liveness.value, "reason": row.verdict.reason}
                for row in page.report
            ],
            "next_cursor": page.next_cursor,
            "page_counts": counts,
        }
    )


@router.get("/recoveries", responses=error_responses(401, 422, 503))
async def recoveries(
    services: ServicesDep,
    q: Needle = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most recoveries listed, newest first.")] = 50,
) -> Response:
    """What automatic recovery did (jobs pushed again, jobs quarantined; ``q`` in their arguments),
    how many per class in the last 24 hours, and how its loop is doing."""
    done = await run_in_threadpool(services.manager.recoveries, q or None, limit)
    classes = await run_in_threadpool(services.manager.recoveries_per_class, COUNTED_HOURS)
    return json_response(
        {
            "loop": services.recoverer.health.document(),
            "per_class": {
                "hours": COUNTED_HOURS,
                "data": [
                    {"job_class": c.job_class, "recovered": c.recovered, "quarantined": c.quarantined}
                    for c in classes
                ],
            },
            "data": [recovery.document() for recovery in done],
        }
    )


@router.get("/alerts", responses=error_responses(401, 503))
async def alerts(services: ServicesDep) -> Response:
    """Open alerts, the newest alerts and notifications (each with its delivery to each URL), and
    how the alert loop is doing: what the Alerts page shows (``docs/alerts.md``)."""
    view = await run_in_threadpool(services.alerter.view)
    return json_response(view.document())


@router.post(
    "/alerts/test",
    status_code=202,
    responses=error_responses(401, 409, 503, describe={409: NO_NOTIFY_URL}),
)
async def alerts_test(services: ServicesDep) -> Response:
    """Queue a test notification to every `SUPERVISOR_NOTIFY` URL; the alert loop sends it now.
    `GET /api/v1/alerts` shows its delivery (`message_id` in `messages`)."""
    if not services.settings.alerts_enabled:
        raise HTTPException(409, "the alert loop is off (SUPERVISOR_ALERTS=false): nothing would send it")
    message_id = await run_in_threadpool(services.alerter.notifier.queue_test)
    if message_id is None:
        raise HTTPException(409, "no notification URL is configured (SUPERVISOR_NOTIFY)")
    services.alerter.wake()
    return json_response({"message_id": message_id}, status_code=202)


# The most outcomes of each kind a JSON answer lists; the counts are always complete.
RESTART_LIST_LIMIT = 1000
NDJSON = "application/x-ndjson"


@router.post("/jobs/restart", responses=error_responses(401, 422, 503, describe={503: RESTART_FAILED}))
async def restart(
    request: Request,
    manager: ManagerDep,
    q: Needle = None,
    dry_run: bool = False,
    wait: Annotated[
        bool, Query(description="Decide jobs whose process may still be alive once it is taken for gone.")
    ] = False,
    limit: Annotated[int, Query(ge=0, le=100_000, description="Most outcomes of each kind listed.")] = (
        RESTART_LIST_LIMIT
    ),
) -> Response:
    """Queue uncompleted jobs again in Sidekiq, as they were pushed; the originals leave the ledger.

    The answer counts every outcome and lists the first ``limit`` of each kind. With
    ``Accept: application/x-ndjson`` it streams one line per job as it is decided, then a line of
    counts (or of the error that stopped the restart, the jobs before it being restarted).
    """
    outcomes = manager.restart_outcomes(q, dry_run=dry_run, wait=wait)
    if NDJSON in request.headers.get("accept", ""):
        lines = (orjson.dumps(line) + b"\n" for line in outcome_lines(outcomes, dry_run))
        # Starlette iterates a plain iterator on a worker thread: the blocking restart never holds
        # the event loop, and each line goes out as soon as its job is decided.
        return StreamingResponse(lines, media_type=NDJSON)
    tally = RestartTally(dry_run, limit)
    try:
        await run_in_threadpool(tally.take_all, outcomes)
    except RestartFailed as exc:
        return retry_later({"error": str(exc), **tally.document()})
    return json_response(tally.document())


class RestartTally:
    """The outcomes of a restart, counted, with the first ``limit`` of each kind kept."""

    def __init__(self, dry_run: bool, limit: int) -> None:
        self.dry_run = dry_run
        self.limit = limit
        self.restarted: list[dict[str, Any]] = []
        self.skipped: list[dict[str, Any]] = []
        self.counts = {"restarted": 0, "skipped": 0}

    def take_all(self, outcomes: Iterable[RestartOutcome]) -> None:
        """Count and keep each outcome (on a worker thread: restarts block on Redis and the database)."""
        for outcome in outcomes:
            self.counts[outcome.kind] += 1
            kept = self.restarted if outcome.taken else self.skipped
            if len(kept) < self.limit:
                kept.append(outcome.document())

    def document(self) -> dict[str, Any]:
        """The JSON answer; ``truncated`` says whether a list stops short of its count."""
        truncated = self.counts["restarted"] > len(self.restarted) or self.counts["skipped"] > len(
            self.skipped
        )
        return {
            "dry_run": self.dry_run,
            "restarted": self.restarted,
            "skipped": self.skipped,
            "counts": self.counts,
            "truncated": truncated,
        }
