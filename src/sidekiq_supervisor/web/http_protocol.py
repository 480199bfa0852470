"""uvicorn's HTTP/1.1 protocol (httptools), with a deadline on each request's headers and one
write per turn of the event loop.

uvicorn times out idle keep-alive connections, but not a client that connects and sends half a
header, or nothing: such a connection was held for ever, and a thousand of them used up the
process's file descriptors. Here every request's headers must arrive within
``SUPERVISOR_HEADER_TIMEOUT_SECONDS`` of its first byte (or of the connection), else the
connection is closed. Bodies are bounded in the app (``web.body_guard``).

A connection only notes when its headers began; one periodic check per server closes those past
the deadline (within a tenth of it, at most half a second late). A timer per request, armed at its
first byte and cancelled at the end of its headers, cost more CPU than parsing the request.

Each connection's writes within one turn of the loop (a response's head and body) leave in one
system call: see :class:`OneWritePerTurn`.

``serve`` passes this class to uvicorn as its ``http`` implementation.
"""

from __future__ import annotations

import asyncio
import weakref
from functools import cache
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from sidekiq_supervisor.settings import Settings

MAX_CHECK_INTERVAL_SECONDS = 0.5
# Writes held for the end of a turn are written at once past this size.
FLUSH_AT_BYTES = 64 * 1024

# The servers (one per process under uvicorn) whose connections are being checked now.
_checked: weakref.WeakSet[ServerState] = weakref.WeakSet()


@cache
def header_timeout_seconds() -> float:
    """The configured deadline, read once per process (uvicorn builds one protocol per connection)."""
    return Settings().header_timeout_seconds


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that closes a connection whose request headers do not arrive in time."""

    # The loop time at which the headers awaited now began to be awaited; None between requests.
    _headers_since: float | None = None

    # uvicorn's own signature (asyncio.Transport) narrows asyncio.BaseProtocol's (BaseTransport).
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock for the first request's headers."""
        super().connection_made(transport)
        # Alike, not a subclass: asyncio.Transport's methods would hide the delegation.
        self.transport = cast(asyncio.Transport, OneWritePerTurn(transport, self.loop))
        self._headers_since = self.loop.time()
        if self.server_state not in _checked:
            _checked.add(self.server_state)
            _schedule_check(self.loop, self.server_state)

    def on_message_begin(self) -> None:
        """A request begins (the next one, on a kept-alive connection): its headers are timed."""
        super().on_message_begin()
        if self._headers_since is None:
            self._headers_since = self.loop.time()

    def on_headers_complete(self) -> None:
        """The headers are in: the body has its own deadline, in the app."""
        self._headers_since = None
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        """Nothing to time any more."""
        self._headers_since = None
        super().connection_lost(exc)

    def headers_overdue(self, now: float) -> bool:
        """Whether this connection's awaited headers are past the deadline at loop time ``now``."""
        since = self._headers_since
        return since is not None and now - since >= header_timeout_seconds()

    def close_for_late_headers(self) -> None:
        """Close the connection: its client did not send its headers in time."""
        self._headers_since = None
        if not self.transport.is_closing():
            self.transport.close()


class OneWritePerTurn:
    """A connection's transport whose writes within one turn of the event loop leave together.

    uvicorn writes a response's head and its body apart, two system calls and two segments; on
    this loopback each call also runs the receiving side's TCP, and py-spy put a third of the
    loop's time under load in them (docs/performance.md, "Ingest"). Here the writes of one turn
    are joined and written once, when the loop has run what was ready: at most a turn later, so
    nothing waits on a later event. A large write goes out at once, for uvicorn's flow control
    to see it, and ``close`` writes what is held first. Everything else is the transport's own.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._held_bytes = 0

    def write(self, data: bytes) -> None:
        """Hold ``data`` until the end of this turn, with whatever else this turn writes."""
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(data)
        self._held_bytes += len(data)
        if self._held_bytes >= FLUSH_AT_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write what is held, in one call (nothing, when the connection is closing)."""
        held, self._held, self._held_bytes = self._held, [], 0
        if held and not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        """Write what is held, then close."""
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        # Reading, flow control, extra info, abort: the transport's own.
        return getattr(self._transport, name)


def _schedule_check(loop: asyncio.AbstractEventLoop, state: ServerState) -> None:
    interval = min(header_timeout_seconds() / 10, MAX_CHECK_INTERVAL_SECONDS)
    loop.call_later(interval, _check, loop, state)


def _check(loop: asyncio.AbstractEventLoop, state: ServerState) -> None:
    """Close the connections whose headers are late; check again while there are connections."""
    now = loop.time()
    for connection in list(state.connections):
        if isinstance(connection, HeaderTimeoutProtocol) and connection.headers_overdue(now):
            connection.close_for_late_headers()
    if state.connections:
        _schedule_check(loop, state)
    else:
        _checked.discard(state)  # the next connection starts the checks again
