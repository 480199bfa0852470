"""``/apps``: every app on one page, a row each, for a first responder: Sidekiq's figures of today,
the ledger's uncompleted and orphaned jobs, whether its Redis answers, and a link into each.

It answers 200 whatever is down: a row says which app's Redis or ledger could not be read
(``services.app_overview`` waits for any one app a bounded time). Under ``/apps/NAME`` it shows
that app alone; its links go to the supervisor's own URLs either way.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.background import BackgroundTask

from sidekiq_supervisor.services.app_overview import RedisState
from sidekiq_supervisor.web.apps_overview import overview_of, sources_of
from sidekiq_supervisor.web.pages.templating import render
from sidekiq_supervisor.web.paths import site_root

# A page (basic auth, CSP, CSRF) outside the pages' own list, which another change is rewriting:
# web/app.py includes this router on its own.
router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/apps", response_class=HTMLResponse)
@router.get("/apps/", response_class=HTMLResponse)
async def apps_page(request: Request) -> HTMLResponse:
    """The overview of apps (refreshed every 10 s)."""
    overview = overview_of(request)
    sources = sources_of(request)
    statuses = await overview.check(sources)
    response = render(
        request,
        "apps.html",
        refresh=10,
        apps=statuses,
        site=site_root(request.scope),
        reachable=sum(status.redis is RedisState.OK for status in statuses),
        deadline_seconds=overview.deadline_seconds,
    )
    # The next reading of each stale ledger starts once this page is sent.
    response.background = BackgroundTask(overview.refresh_ledgers, sources)
    return response
