"""The seed's report routes, answered without the framework's per-request machinery.

Each Sidekiq job makes three reports, so these routes carry nearly all of the service's traffic.
Measured under load (docs/performance.md), FastAPI's routing, dependency solving and exception
layers cost more CPU per report than validating and storing it. This ASGI middleware answers a
well-formed form-encoded report itself, through the very functions the routes of
``web.api.ingest`` use (validation, redaction, the group-commit writer, the answer's document).
Everything else (JSON bodies, a missing or wrong token, invalid fields, a body too large or of
unknown length) goes on to those routes with the body replayed, so each refusal is worded, and
documented in /openapi.json, in one place.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi.exceptions import RequestValidationError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sidekiq_supervisor.clock import now_micros
from sidekiq_supervisor.domain.model import EventKind
from sidekiq_supervisor.services.report_writer import IngestUnavailable
from sidekiq_supervisor.web.api.auth import matches_any, presented_token
from sidekiq_supervisor.web.api.ingest import REPORT_PATH, report_from_fields, stored_response
from sidekiq_supervisor.web.deps import Services
from sidekiq_supervisor.web.errors import unavailable_response

FORM_TYPES = ("application/x-www-form-urlencoded", "")


class ReportFastPath:
    """Pure ASGI middleware: stores a plain form-encoded report, hands anything else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the request if it is an ordinary report; else let the app's routes answer it."""
        match = REPORT_PATH.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if match is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        received = now_micros()
        services: Services = scope["app"].state.services
        headers = Headers(scope=scope)
        if not _ordinary(headers, services):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client left before it finished sending; there is nobody to answer
        jid, kind = match.groups()
        try:
            fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict"))
            report = report_from_fields(fields, EventKind(kind or "queued"), jid, received, services)
        except (UnicodeDecodeError, RequestValidationError):
            await self.app(scope, _replayed(body, receive), send)  # the route words the refusal
            return
        try:
            (result,) = await services.writer.submit([report])
        except IngestUnavailable as exc:
            await unavailable_response(exc)(scope, receive, send)
            return
        await stored_response(result)(scope, receive, send)


def _ordinary(headers: Headers, services: Services) -> bool:
    """A form body of a declared length within the limit, with a valid token when one is wanted."""
    media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    length = headers.get("content-length", "")
    declared = length.isascii() and length.isdigit()
    if media_type not in FORM_TYPES or not declared or int(length) > services.settings.max_body_bytes:
        return False
    if not services.api_tokens:
        return True
    presented = presented_token(headers.get("authorization", ""))
    return presented is not None and matches_any(presented, services.api_tokens)


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body, or None when the client disconnects first (a partial form may still parse)."""
    # The server holds a body to its declared Content-Length, which _ordinary bounded.
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replayed(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the app the body read already, then whatever comes next."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay
