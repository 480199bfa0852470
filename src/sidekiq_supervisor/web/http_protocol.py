"""uvicorn's HTTP/1.1 protocol (httptools), with a deadline on each request's headers.

uvicorn times out idle keep-alive connections, but not a client that connects and sends half a
header, or nothing: such a connection was held for ever, and a thousand of them used up the
process's file descriptors. Here every request's headers must arrive within
``SUPERVISOR_HEADER_TIMEOUT_SECONDS`` of its first byte (or of the connection), else the
connection is closed. Bodies are bounded in the app (``web.body_guard``).

``serve`` passes this class to uvicorn as its ``http`` implementation.
"""

from __future__ import annotations

import asyncio
from functools import cache

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sidekiq_supervisor.settings import Settings


@cache
def header_timeout_seconds() -> float:
    """The configured deadline, read once per process (uvicorn builds one protocol per connection)."""
    return Settings().header_timeout_seconds


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that closes a connection whose request headers do not arrive in time."""

    _header_deadline: asyncio.TimerHandle | None = None

    # uvicorn's own signature (asyncio.Transport) narrows asyncio.BaseProtocol's (BaseTransport).
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock for the first request's headers."""
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_message_begin(self) -> None:
        """A request begins (the next one, on a kept-alive connection): its headers are timed."""
        super().on_message_begin()
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        """The headers are in: the body has its own deadline, in the app."""
        self._disarm_header_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        """Nothing to time any more."""
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(header_timeout_seconds(), self._headers_too_late)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_late(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()
