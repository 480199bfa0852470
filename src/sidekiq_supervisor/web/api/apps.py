"""``GET /api/v1/apps``: every app at once, with what a first responder needs of each.

Opened by a token that opens every app (``web.api.auth.require_token_of_every_app``): one of
``SUPERVISOR_API_TOKEN``'s, or one that every app's ``api_tokens`` list (an app's own token
shows other apps' figures only if they all list it). Under ``/apps/NAME`` the answer is that
app's entry alone, and its own tokens open it, as for ``/metrics``.

It answers 200 whatever is down: each app's ``redis`` and ``ledger`` say what could not be read,
and its figures from there are null. It waits for any one app at most ``deadline_seconds``
(``services.app_overview``), so it is exempt from the request deadline (``web.deadline``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.background import BackgroundTask

from sidekiq_supervisor.services.app_overview import AppStatus
from sidekiq_supervisor.web.api.auth import require_token_of_every_app
from sidekiq_supervisor.web.api.openapi_errors import error_responses
from sidekiq_supervisor.web.api.presenters import json_response
from sidekiq_supervisor.web.apps_overview import app_url, overview_of, sources_of
from sidekiq_supervisor.web.paths import site_root

PATH = "/api/v1/apps"

router = APIRouter(prefix="/api/v1", tags=["apps"], dependencies=[Depends(require_token_of_every_app)])


@router.get("/apps", responses=error_responses(401))
async def apps(request: Request) -> Response:
    """Every app (in the configuration's order, the default app first) with, from its Sidekiq's
    Redis, today's processed and failed jobs, the enqueued, retrying, scheduled, dead and busy
    ones and the oldest waiting job's latency; from its ledger, the queued and uncompleted jobs
    and how many of those are orphaned; and a link into the app (``url``, ``sidekiq_url``).

    ``redis`` is `ok`, `unreachable`, `timeout` (no answer within ``deadline_seconds``) or
    `not configured`; unless `ok`, the Sidekiq figures and ``orphaned`` are null. ``ledger`` is
    `ok`, `unavailable` (the database did not answer) or `pending` (its first reading is under
    way); the ledger figures come from the reading `/metrics` keeps, taken at ``ledger_read_at``.
    """
    overview = overview_of(request)
    sources = sources_of(request)
    statuses = await overview.check(sources)
    root = site_root(request.scope)
    body = {
        "deadline_seconds": overview.deadline_seconds,
        "data": [app_document(status, root) for status in statuses],
    }
    response = json_response(body)
    # The next reading of each stale ledger starts once this answer is sent.
    response.background = BackgroundTask(overview.refresh_ledgers, sources)
    return response


def app_document(status: AppStatus, root: str = "") -> dict[str, Any]:
    """One app's entry (for ``orjson.dumps``: its times are datetimes)."""
    sidekiq, ledger = status.sidekiq, status.ledger
    return {
        "name": status.name,
        "url": app_url(root, status.name),
        "sidekiq_url": app_url(root, status.name, "/sidekiq"),
        "checked_at": status.checked_at,
        "redis": status.redis.value,
        "redis_error": status.redis_error,
        "processed_today": None if sidekiq is None else sidekiq.processed_today,
        "failed_today": None if sidekiq is None else sidekiq.failed_today,
        "enqueued": None if sidekiq is None else sidekiq.enqueued,
        "retries": None if sidekiq is None else sidekiq.retries,
        "scheduled": None if sidekiq is None else sidekiq.scheduled,
        "dead": None if sidekiq is None else sidekiq.dead,
        "busy": None if sidekiq is None else sidekiq.busy,
        "processes": None if sidekiq is None else sidekiq.processes,
        "latency_seconds": None if sidekiq is None else round(sidekiq.latency_seconds, 3),
        "latency_queue": None if sidekiq is None else sidekiq.latency_queue,
        "ledger": status.ledger_state.value,
        "queued": None if ledger is None else ledger.queued,
        "uncompleted": None if ledger is None else ledger.uncompleted,
        "orphaned": None if ledger is None else ledger.orphaned,
        "ledger_read_at": None if ledger is None else ledger.read_at,
    }
