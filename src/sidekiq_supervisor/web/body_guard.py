"""Request bodies, bounded in size and in time, on every route and page form.

A ``Content-Length`` can be checked before reading; a chunked body cannot, and a client that
declares 1,000 bytes may send 12 and wait. So the ASGI ``receive`` of every request is wrapped:
past ``SUPERVISOR_MAX_BODY_BYTES`` it stops with 413, and a body that does not arrive within
``SUPERVISOR_BODY_TIMEOUT_SECONDS`` (per chunk) stops with 408. Nothing more than the limit is ever
held in memory, and a slow client holds a connection for a bounded time.

A body whose declared ``Content-Length`` is within the limit cannot pass it (the server reads no
further), so only its time is bounded, and by one watchdog task per event loop, which checks the
waiting ``receive`` calls a few times a second: a timer per call (``asyncio.wait_for``) cost more
CPU than parsing a seed report. Other bodies keep the timer per call.

The refusal is raised from ``receive`` as an ``HTTPException``: a route or a dependency reading the
body answers it through the app's error handlers (the usual JSON body); when the reader is a
middleware (the report fast path), this one answers it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sidekiq_supervisor.web.api.presenters import json_response
from sidekiq_supervisor.web.deadline import TrackedSend


class BodyRefused(HTTPException):
    """The body was too large or too slow; the request ends with this status."""


class BodyDeadline:
    """The time bound of bodies of declared length within the limit: one watchdog per event loop."""

    def __init__(self, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds
        self._watchdog: ReceiveWatchdog | None = None

    async def receive(self, receive: Receive) -> Message:
        """``receive()``, or ``BodyRefused`` (408) once it has waited the timeout."""
        watchdog = self._watchdog
        if watchdog is None or watchdog.loop is not asyncio.get_running_loop():
            watchdog = self._watchdog = ReceiveWatchdog(asyncio.get_running_loop(), self.timeout_seconds)
        try:
            return await watchdog.within_deadline(receive)
        except TimeoutError:
            raise BodyRefused(408, f"the body did not arrive within {self.timeout_seconds:g} s") from None


async def refuse_body(exc: BodyRefused, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer a refused body, closing the connection (the rest of the body is not read)."""
    response = json_response({"error": exc.detail, "detail": exc.detail}, exc.status_code)
    response.headers["Connection"] = "close"
    await response(scope, receive, send)


class BodyGuard:
    """Pure ASGI middleware bounding every request body in bytes and in time."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout_seconds: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds
        self._deadline = BodyDeadline(timeout_seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app with a bounded ``receive``; answer a refusal nobody else answered."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = TrackedSend(send)
        length = _declared_length(scope)
        within = length is not None and length <= self.max_bytes
        try:
            await self.app(scope, self._watched(receive) if within else self._bounded(receive), tracked)
        except BodyRefused as exc:
            if not tracked.started:  # else the response is under way: the server closes the connection
                await refuse_body(exc, scope, receive, send)

    def _watched(self, receive: Receive) -> Receive:
        """``receive`` of a body of declared length within the limit: bounded in time only."""
        deadline = self._deadline
        complete = False

        async def watched_receive() -> Message:
            nonlocal complete
            if complete:  # after the body, receive only waits for the disconnect: no deadline
                return await receive()
            message = await deadline.receive(receive)
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        return watched_receive

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


def _declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length`` (the first, as Starlette reads it), or None."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isascii() and value.isdigit() else None
    return None


class ReceiveWatchdog:
    """The deadlines of the ``receive`` calls waiting on one event loop, checked by one task.

    A call past its deadline has its task cancelled, and ``within_deadline`` turns that
    cancellation (and only that one) into ``TimeoutError``. A deadline is kept within a
    ``TICKS``-th of the timeout (at most ``MAX_TICK_SECONDS``) after it passes.
    """

    TICKS = 10
    MAX_TICK_SECONDS = 0.25

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_seconds: float) -> None:
        self.loop = loop
        self.timeout_seconds = timeout_seconds
        self._tick = min(timeout_seconds / self.TICKS, self.MAX_TICK_SECONDS)
        self._waiting: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._task: asyncio.Task[None] | None = None

    async def within_deadline(self, receive: Receive) -> Message:
        """``receive()``, or ``TimeoutError`` once it has waited ``timeout_seconds``."""
        task = asyncio.current_task()
        if task is None:  # not in a task (never so under a server): nothing to cancel
            return await receive()
        self._waiting[task] = self.loop.time() + self.timeout_seconds
        if self._task is None:
            self._task = self.loop.create_task(self._watch(), name="body-deadlines")
        try:
            return await receive()
        except asyncio.CancelledError:
            if task not in self._expired:
                raise
            self._expired.discard(task)
            task.uncancel()
            raise TimeoutError from None
        finally:
            del self._waiting[task]

    async def _watch(self) -> None:
        # Runs while some receive waits; the next waiting receive starts it again.
        try:
            while self._waiting:
                await asyncio.sleep(self._tick)
                now = self.loop.time()
                for task, deadline in list(self._waiting.items()):
                    if deadline <= now and task not in self._expired:
                        self._expired.add(task)
                        task.cancel()
        finally:
            self._task = None
