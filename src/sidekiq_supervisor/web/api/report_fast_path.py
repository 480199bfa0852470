"""The seed's report routes, answered without the framework's per-request machinery.

Each Sidekiq job makes three reports, so these routes carry nearly all of the service's traffic.
Measured under load (docs/performance.md), FastAPI's routing, dependency solving and exception
layers cost more CPU per report than validating and storing it. This ASGI middleware answers a
well-formed form-encoded report itself, through the very functions the routes of
``web.api.ingest`` use (validation, redaction, the group-commit writer, the answer's document).
Everything else (JSON bodies, a missing or wrong token, invalid fields, a body too large or of
unknown length) goes on to those routes with the body replayed, so each refusal is worded, and
documented in /openapi.json, in one place.

It is the outermost of the app's own middlewares: the others have nothing to do for a plain report
(no page, no deadline but the writer's), yet each cost a layer of calls on every report, and each
of ``send``'s wrappers another per message. So it finds the report's app as ``web.app_prefix``
does and bounds the body's time as ``web.body_guard`` does, and it hands anything else on, scope
untouched, to those middlewares.
"""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sidekiq_supervisor.clock import now_micros
from sidekiq_supervisor.domain.model import EventKind
from sidekiq_supervisor.services.report_writer import IngestUnavailable
from sidekiq_supervisor.web.api.auth import matches_any, presented_token
from sidekiq_supervisor.web.api.form_fields import form_fields
from sidekiq_supervisor.web.api.ingest import REPORT_PATH, report_from_fields, stored_answer
from sidekiq_supervisor.web.app_prefix import app_route
from sidekiq_supervisor.web.body_guard import BodyDeadline, BodyRefused, refuse_body
from sidekiq_supervisor.web.deps import Services
from sidekiq_supervisor.web.errors import unavailable_response

FORM_TYPES = (b"application/x-www-form-urlencoded", b"")
WANTED_HEADERS = frozenset((b"content-type", b"content-length", b"authorization"))


class ReportFastPath:
    """Pure ASGI middleware: stores a plain form-encoded report, hands anything else on."""

    def __init__(self, app: ASGIApp, *, body_timeout_seconds: float) -> None:
        self.app = app
        self._body_deadline = BodyDeadline(body_timeout_seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the request if it is an ordinary report; else let the app's routes answer it."""
        # A report to /apps/x/api/v1/jobs/... is the app x's to /api/v1/jobs/...
        target = app_route(scope) if scope["type"] == "http" and scope["method"] == "POST" else None
        match = None if target is None else REPORT_PATH.fullmatch(target[1])
        if target is None or match is None:
            await self.app(scope, receive, send)
            return
        received = now_micros()
        services = target[0]
        if not _ordinary(scope["headers"], services):
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read_body(receive)
        except BodyRefused as exc:
            await refuse_body(exc, scope, receive, send)
            return
        if body is None:
            return  # the client left before it finished sending; there is nobody to answer
        jid, kind = match.groups()
        try:
            fields = form_fields(body)
            report = report_from_fields(fields, EventKind(kind or "queued"), jid, received, services)
        except (UnicodeDecodeError, RequestValidationError):
            await self.app(scope, _replayed(body, receive), send)  # the route words the refusal
            return
        try:
            (result,) = await services.writer.submit([report])
        except IngestUnavailable as exc:
            await unavailable_response(exc)(scope, receive, send)
            return
        status, document = stored_answer(result)
        # What ``stored_response`` sends, without building a Response: the same two messages.
        length = str(len(document)).encode()
        headers = [(b"content-length", length), (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": document})

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None when the client disconnects first (a partial form may still
        parse); ``BodyRefused`` when it does not arrive in time."""
        # The server holds a body to its declared Content-Length, which _ordinary bounded.
        chunks = []
        while True:
            message = await self._body_deadline.receive(receive)
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)


def _ordinary(raw_headers: list[tuple[bytes, bytes]], services: Services) -> bool:
    """A form body of a declared length within the limit, with a valid token when one is wanted."""
    # The first of a repeated header counts, as with ``starlette.datastructures.Headers.get``
    # (ASGI servers give the names in lower case).
    headers: dict[bytes, bytes] = {}
    for name, value in raw_headers:
        if name in WANTED_HEADERS:
            headers.setdefault(name, value)
    media_type = headers.get(b"content-type", b"").partition(b";")[0].strip().lower()
    length = headers.get(b"content-length", b"")
    declared = length.isascii() and length.isdigit()
    if media_type not in FORM_TYPES or not declared or int(length) > services.settings.max_body_bytes:
        return False
    if not services.api_tokens:
        return True
    presented = presented_token(headers.get(b"authorization", b"").decode("latin-1"))
    return presented is not None and matches_any(presented, services.api_tokens)


def _replayed(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the app the body read already, then whatever comes next."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay
