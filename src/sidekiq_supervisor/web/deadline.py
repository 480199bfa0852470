"""Every request that reads or writes the ledger is answered within a deadline.

A database that stops answering (a network partition, a hung server) would otherwise hold each
request for as long as TCP takes to notice, minutes at worst: no driver timeout covers a peer
that accepts packets but never replies. Past ``SUPERVISOR_REQUEST_TIMEOUT_SECONDS`` a read is
answered 503 with ``Retry-After``. Reports are exempt here because the group-commit writer keeps
the same deadline itself and leaves a late report out of its transaction, so the 503 is true
(``GroupCommitWriter``); it does so with one watchdog rather than a timer per request, which at
ingest rates cost more CPU than the rest of the request. Restarts are exempt too: they act on
Sidekiq's Redis, and stopping one halfway would only confuse.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from sidekiq_supervisor.web.api.ingest import EVENTS_PATH, REPORT_PATH
from sidekiq_supervisor.web.errors import retry_later
from sidekiq_supervisor.web.paths import route_path

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# /metrics and the overview of apps bound their own waits: they never wait on the database past
# its first reading, nor on any app's Redis past their deadline, and they answer 200 (saying what
# is down) rather than 503.
EXEMPT = ("/api/v1/jobs/restart", "/restart", "/sidekiq", "/static", "/metrics", "/api/v1/apps")


def _exempt(scope: Scope) -> bool:
    """Whether the request keeps no deadline here: an exempt route, or a report."""
    path = route_path(scope)  # under a root path too: /apps/x/restart is /restart
    if path.startswith(EXEMPT):
        return True
    return scope["method"] == "POST" and (path == EVENTS_PATH or REPORT_PATH.fullmatch(path) is not None)


class TrackedSend:
    """An ASGI ``send`` that remembers whether the response has started (then no other answer can
    replace it)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        """Send ``message``, noting the response's start."""
        self.started = self.started or message["type"] == "http.response.start"
        await self._send(message)


class RequestDeadline:
    """Pure ASGI middleware: 503 for a request that is not answered within ``seconds``."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request under the deadline; answer 503 in its stead if it passes first."""
        if scope["type"] != "http" or _exempt(scope):
            await self.app(scope, receive, send)
            return
        tracked = TrackedSend(send)
        try:
            async with asyncio.timeout(self.seconds):
                await self.app(scope, receive, tracked)
        except TimeoutError:
            if tracked.started:
                raise  # half an answer went out already; only closing the connection is left
            error = f"the database did not answer within {self.seconds:g} s; retry later"
            await retry_later({"error": error})(scope, receive, send)
