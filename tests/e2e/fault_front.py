"""An HTTP front for the real service that the gem's fault tests switch between four behaviours.

The gem is pointed at the front, the front at a real ``sidekiq-supervisor serve``:

- ``HEALTHY``: each request is forwarded to the service and its answer relayed;
- ``DOWN``: nothing listens on the front's port, so connecting is refused (ECONNREFUSED), and live
  connections are reset, as when the service's process is gone;
- ``SLOW``: each request is forwarded at once (so the service may well store it) but its answer
  is held ``slow_seconds`` (5 s) before it is sent: the ambiguous timeout of a stalled service;
- ``ERROR``: each request is answered 500 without reaching the service.

The mode is read when a request arrives, so keep-alive connections opened in one mode obey the
next. Every request is recorded (mode, arrival, and for ``SLOW`` when its answer was released),
which lets a test tell what the gem saw and when.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import BinaryIO

from tests.reliability.proxy import reset_connection

SLOW_SECONDS = 5.0
# Headers that describe one hop, not the message: the front sets its own.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}
)
ERROR_BODY = b'{"detail":"fault front: injected 500"}'
MAX_HEADER_LINES = 100


class Fault(Enum):
    """What the front does with the next request."""

    HEALTHY = "healthy"
    DOWN = "down"
    SLOW = "slow"
    ERROR = "error"


@dataclass
class Exchange:
    """One request the front received: in which mode, when, and when a held answer was released."""

    fault: Fault
    received_at: float
    released_at: float | None = None


@dataclass(frozen=True)
class Request:
    """An HTTP request as read from the client."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes


def read_request(reader: BinaryIO) -> Request | None:
    """The next request on a connection, or None once the client closed it.

    Enough of HTTP/1.1 for Net::HTTP's POSTs: a body only with Content-Length, never chunked.
    """
    line = reader.readline()
    if not line.strip():
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers: list[tuple[str, str]] = []
    for _ in range(MAX_HEADER_LINES):
        header = reader.readline().decode("latin-1").rstrip("\r\n")
        if not header:
            break
        name, _, value = header.partition(":")
        headers.append((name.strip(), value.strip()))
    length = next((int(value) for name, value in headers if name.lower() == "content-length"), 0)
    body = reader.read(length) if length else b""
    if len(body) < length:
        return None  # the client left halfway through its body
    return Request(method, target, headers, body)


def http_response(status: int, reason: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """The bytes of an HTTP/1.1 keep-alive response."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in headers if name.lower() not in HOP_BY_HOP]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class FaultFront:
    """Listens on ``127.0.0.1:port`` in front of ``upstream``; :meth:`switch` changes the fault."""

    def __init__(self, upstream_host: str, upstream_port: int, slow_seconds: float = SLOW_SECONDS) -> None:
        self._upstream = (upstream_host, upstream_port)
        self.slow_seconds = slow_seconds
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._fault = Fault.HEALTHY
        self._connections: set[socket.socket] = set()
        self._exchanges: list[Exchange] = []
        self._listener: socket.socket | None = None
        self.port = self._listen(0)

    @property
    def url(self) -> str:
        """The base URL the gem is given."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def fault(self) -> Fault:
        """The current mode."""
        return self._fault

    def switch(self, fault: Fault) -> None:
        """Behave as ``fault`` from the next request (``DOWN`` and back take effect at once)."""
        with self._lock:
            previous, self._fault = self._fault, fault
            if fault is Fault.DOWN and previous is not Fault.DOWN:
                listener, self._listener = self._listener, None
                live, self._connections = self._connections, set()
            else:
                listener, live = None, set()
        # The listener goes first, so that no connection slips in between.
        if listener is not None:
            reset_connection(listener)
        for sock in live:
            reset_connection(sock)
        if previous is Fault.DOWN and fault is not Fault.DOWN:
            self._listen(self.port)

    def exchanges(self, since: float = 0.0) -> list[Exchange]:
        """The requests received at or after ``since`` (monotonic seconds), oldest first."""
        with self._lock:
            return [exchange for exchange in self._exchanges if exchange.received_at >= since]

    def close(self) -> None:
        """Stop listening, reset every connection, release held answers."""
        self._closed.set()
        with self._lock:
            listener, self._listener = self._listener, None
            live, self._connections = self._connections, set()
        if listener is not None:
            reset_connection(listener)
        for sock in live:
            reset_connection(sock)

    # --- connections ----------------------------------------------------------------------

    def _listen(self, port: int) -> int:
        # SO_REUSEADDR (create_server's default) takes the same port back right after DOWN.
        listener = socket.create_server(("127.0.0.1", port), backlog=64)
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True).start()
        return listener.getsockname()[1]

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed: DOWN, or the end of the test
            with self._lock:
                if self._listener is not listener:
                    refused = True
                else:
                    refused = False
                    self._connections.add(client)
            if refused:
                reset_connection(client)
            else:
                threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        """Answer the requests of one client connection until it closes or is reset."""
        try:
            with client.makefile("rb") as reader:
                while (request := read_request(reader)) is not None:
                    answer = self._answer(request)
                    if answer is None:
                        break
                    client.sendall(answer)
        except (OSError, ValueError, http.client.HTTPException):
            pass  # reset by a switch or by the client, or a request this front cannot read
        finally:
            with self._lock:
                self._connections.discard(client)
            reset_connection(client)

    def _answer(self, request: Request) -> bytes | None:
        """The bytes to send back for ``request`` in the current mode; None to drop the connection."""
        exchange = Exchange(self._fault, time.monotonic())
        with self._lock:
            self._exchanges.append(exchange)
        if exchange.fault is Fault.DOWN:
            return None
        if exchange.fault is Fault.ERROR:
            return http_response(
                500, "Internal Server Error", [("Content-Type", "application/json")], ERROR_BODY
            )
        answer = self._forward(request)
        if exchange.fault is Fault.SLOW:
            self._closed.wait(max(exchange.received_at + self.slow_seconds - time.monotonic(), 0.0))
            exchange.released_at = time.monotonic()
        return answer

    def _forward(self, request: Request) -> bytes:
        # A connection per request: a kept one may have been closed by the service meanwhile,
        # and a request lost that way would look like a fault the test did not inject.
        upstream = http.client.HTTPConnection(*self._upstream, timeout=30)
        try:
            headers = {name: value for name, value in request.headers if name.lower() not in HOP_BY_HOP}
            upstream.request(request.method, request.target, body=request.body, headers=headers)
            response = upstream.getresponse()
            body = response.read()
            return http_response(response.status, response.reason, response.getheaders(), body)
        finally:
            upstream.close()


@contextmanager
def fault_front(upstream_url: str, slow_seconds: float = SLOW_SECONDS) -> Iterator[FaultFront]:
    """A front forwarding to the service at ``upstream_url`` (``http://host:port``), closed at the end."""
    host, _, port = upstream_url.removeprefix("http://").rstrip("/").partition(":")
    front = FaultFront(host, int(port), slow_seconds)
    try:
        yield front
    finally:
        front.close()
