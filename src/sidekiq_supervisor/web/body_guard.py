"""Request bodies, bounded in size and in time, on every route and page form.

A ``Content-Length`` can be checked before reading; a chunked body cannot, and a client that
declares 1,000 bytes may send 12 and wait. So the ASGI ``receive`` of every request is wrapped:
past ``SUPERVISOR_MAX_BODY_BYTES`` it stops with 413, and a body that does not arrive within
``SUPERVISOR_BODY_TIMEOUT_SECONDS`` (per chunk) stops with 408. Nothing more than the limit is ever
held in memory, and a slow client holds a connection for a bounded time.

The refusal is raised from ``receive`` as an ``HTTPException``: a route or a dependency reading the
body answers it through the app's error handlers (the usual JSON body); when the reader is a
middleware (the report fast path), this one answers it.
"""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sidekiq_supervisor.web.api.presenters import json_response
from sidekiq_supervisor.web.deadline import TrackedSend


class BodyRefused(HTTPException):
    """The body was too large or too slow; the request ends with this status."""


class BodyGuard:
    """Pure ASGI middleware bounding every request body in bytes and in time."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout_seconds: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app with a bounded ``receive``; answer a refusal nobody else answered."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = TrackedSend(send)
        try:
            await self.app(scope, self._bounded(receive), tracked)
        except BodyRefused as exc:
            if not tracked.started:  # else the response is under way: the server closes the connection
                response = json_response({"error": exc.detail, "detail": exc.detail}, exc.status_code)
                response.headers["Connection"] = "close"
                await response(scope, receive, send)

    def _bounded(self, receive: Receive) -> Receive:
        received = 0
        complete = False

        async def bounded_receive() -> Message:
            nonlocal received, complete
            if complete:  # after the body, receive only waits for the disconnect: no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout_seconds)
            except TimeoutError:
                raise BodyRefused(408, f"the body did not arrive within {self.timeout_seconds:g} s") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > self.max_bytes:
                    raise BodyRefused(413, f"the body is larger than {self.max_bytes} bytes")
            return message

        return bounded_receive
