"""GET /metrics: the service's figures in Prometheus' text format (docs/monitoring.md): every
app's, each series labelled with its ``app``; under ``/apps/NAME``, that app's alone.

Behind the API tokens when they are set (Prometheus' ``authorization`` block sends one as a Bearer
token): for every app's figures, a token that opens every app. It answers 200 whatever is down:
the health gauges say what.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from starlette.background import BackgroundTask

from sidekiq_supervisor.services.prometheus.exposition import CONTENT_TYPE
from sidekiq_supervisor.web.api.auth import require_token_of_every_app
from sidekiq_supervisor.web.api.openapi_errors import ResponsesDict, error_responses
from sidekiq_supervisor.web.deps import named_app, running_apps

router = APIRouter(tags=["monitoring"], dependencies=[Depends(require_token_of_every_app)])

SCRAPED: ResponsesDict = {
    200: {
        "description": "The figures, in Prometheus' text format 0.0.4, even when the database or "
        "Sidekiq's Redis is down (`supervisor_database_up`, `supervisor_redis_up` say so).",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
    **error_responses(401),
}


# A plain Response: the 200 is documented above as text, and the 401 is the API's JSON refusal.
@router.get("/metrics", response_class=Response, responses=SCRAPED)
async def metrics(request: Request) -> Response:
    """Sidekiq's figures (as sidekiq-prometheus-exporter names them), the ledger's, and this
    process's, of every app (or of the app ``/apps/NAME`` names)."""
    apps = running_apps(request.scope)
    app = named_app(request.scope)
    names = apps.names if app is None else (app.name,)
    text = await apps.exposition.scrape(names)
    # The next reading of each ledger, when due, starts once this answer is sent.
    background = BackgroundTask(apps.exposition.answered, names)
    return Response(text, media_type=CONTENT_TYPE, background=background)
