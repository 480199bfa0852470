"""GET /metrics: the service's figures in Prometheus' text format (docs/monitoring.md).

Behind the API token when ``SUPERVISOR_API_TOKEN`` is set (Prometheus' ``authorization`` block
sends it as a Bearer token). It answers 200 whatever is down: the health gauges say what.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from starlette.background import BackgroundTask

from sidekiq_supervisor.services.prometheus.exposition import CONTENT_TYPE
from sidekiq_supervisor.web.api.auth import require_api_token
from sidekiq_supervisor.web.api.openapi_errors import ResponsesDict, error_responses
from sidekiq_supervisor.web.deps import ServicesDep

router = APIRouter(tags=["monitoring"], dependencies=[Depends(require_api_token)])

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
async def metrics(services: ServicesDep) -> Response:
    """Sidekiq's figures (as sidekiq-prometheus-exporter names them), the ledger's, and this process's."""
    exporter = services.exporter
    text = await exporter.scrape()
    # The next reading of the ledger, when due, starts once this answer is sent.
    return Response(text, media_type=CONTENT_TYPE, background=BackgroundTask(exporter.answered))
