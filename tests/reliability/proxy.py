"""A TCP proxy the tests control, to take a server away without touching the real one.

The machine's PostgreSQL and Redis are shared with other people: they must never be stopped. A
test points the service at this proxy instead and cuts the link: either the way a crashed or
restarted server looks (connections reset, new ones refused at once), or the way a network
partition looks (the peer simply stops answering), which is what catches missing timeouts.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from enum import Enum

CHUNK = 64 * 1024
# How often a blocked pump re-checks whether the proxy was closed.
POLL_SECONDS = 0.2


class Mode(Enum):
    """What the proxy does with traffic."""

    FORWARD = "forward"
    # Live connections are reset and new ones are accepted then reset at once: a server that died.
    REFUSE = "refuse"
    # Nothing is forwarded and nothing is closed: a partition, where only timeouts help.
    BLACKHOLE = "blackhole"


def reset_connection(sock: socket.socket) -> None:
    """Close with RST (linger 0), waking any thread blocked on the socket first."""
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with suppress(OSError):
        sock.close()


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``target``; :meth:`cut`, :meth:`blackhole`, :meth:`restore`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(POLL_SECONDS)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._mode = Mode.FORWARD
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        # hang_after: the bytes whose request goes through before the link hangs, and the signal.
        self._trap: tuple[bytes, threading.Event] | None = None
        self._spawn(self._accept_loop)

    @property
    def mode(self) -> Mode:
        """The current mode."""
        return self._mode

    def cut(self) -> None:
        """Act as a dead server: reset every live connection and every new one."""
        with self._lock:
            self._mode = Mode.REFUSE
            self._flowing.clear()
            live, self._sockets = self._sockets, set()
        for sock in live:
            reset_connection(sock)

    def blackhole(self) -> None:
        """Act as a partition: keep every connection open, forward nothing either way."""
        with self._lock:
            self._mode = Mode.BLACKHOLE
            self._flowing.clear()

    def hang_after(self, request: bytes) -> threading.Event:
        """Forward until a client sends bytes containing ``request``; forward those, then act as a
        partition before any answer can come back: the server did what was asked, the client
        never hears. The event is set at that moment. (A request is matched within one read: a
        Redis command is one write of its client, and small ones arrive whole.)"""
        hung = threading.Event()
        with self._lock:
            self._trap = (request, hung)
        return hung

    def restore(self) -> None:
        """Forward again (held data included, as TCP does once a partition heals)."""
        with self._lock:
            self._mode = Mode.FORWARD
            self._flowing.set()

    def close(self) -> None:
        """Stop the proxy and reset every connection."""
        self._closed.set()
        self._flowing.set()
        with self._lock:
            live, self._sockets = self._sockets, set()
        for sock in live:
            reset_connection(sock)
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=2)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed
            with self._lock:
                refused = self._mode is Mode.REFUSE
                if not refused:
                    self._sockets.add(client)
            if refused:
                reset_connection(client)
            else:
                self._spawn(self._connect, client)

    def _connect(self, client: socket.socket) -> None:
        # During a partition even the connection to the server waits: nothing gets through.
        if not self._wait_flowing():
            reset_connection(client)
            return
        try:
            upstream = socket.create_connection(self._target, timeout=5)
        except OSError:
            reset_connection(client)
            return
        upstream.settimeout(None)
        with self._lock:
            if self._mode is Mode.REFUSE or client not in self._sockets:
                refused = True
            else:
                refused = False
                self._sockets.add(upstream)
        if refused:
            reset_connection(upstream)
            reset_connection(client)
            return
        self._spawn(self._pump, client, upstream, True)
        self._pump(upstream, client)

    def _spring(self, data: bytes) -> None:
        """Hang the link (``hang_after``) if ``data`` is the request awaited: before it is
        forwarded, so that no answer to it gets through."""
        with self._lock:
            if self._trap is None or self._trap[0] not in data:
                return
            (_, hung), self._trap = self._trap, None
            self._mode = Mode.BLACKHOLE
            self._flowing.clear()
        hung.set()

    def _wait_flowing(self) -> bool:
        """Wait until traffic may flow; False once the proxy is closed or the link is cut."""
        while not self._flowing.wait(POLL_SECONDS):
            if self._closed.is_set() or self._mode is Mode.REFUSE:
                return False
        return not self._closed.is_set()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool = False) -> None:
        try:
            while True:
                data = source.recv(CHUNK)
                if not data or not self._wait_flowing():
                    break
                if from_client:
                    self._spring(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.discard(source)
                self._sockets.discard(sink)
            reset_connection(source)
            reset_connection(sink)


@contextmanager
def tcp_proxy(target_host: str, target_port: int) -> Iterator[TcpProxy]:
    """A forwarding proxy to the target, closed at the end."""
    proxy = TcpProxy(target_host, target_port)
    try:
        yield proxy
    finally:
        proxy.close()
