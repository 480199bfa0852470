"""The baseline of the ingest benchmark: the same three routes as a bare Starlette app that reads
the body and answers a fixed job document, storing nothing. Served by the same server (uvicorn or
granian) and settings as the service."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ANSWER = b'{"jid":"0","status":"queued"}'


async def report(request: Request) -> Response:
    await request.body()
    return Response(ANSWER, status_code=201, media_type="application/json")


async def healthz(_request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(
    routes=[
        Route("/api/v1/jobs", report, methods=["POST"]),
        Route("/api/v1/jobs/{job_id}/started", report, methods=["POST"]),
        Route("/api/v1/jobs/{job_id}/complete", report, methods=["POST"]),
        Route("/healthz", healthz),
    ]
)
