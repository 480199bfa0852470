"""Real receivers for notifications: an SMTP server (aiosmtpd), an HTTP server that keeps what it is
sent, and an HTTPS proxy that stands in for Slack's hooks.slack.com.

Apprise's ``slack://`` URL always posts to https://hooks.slack.com. Its requests honour
``HTTPS_PROXY``, as every requests-based client does: the proxy here answers the CONNECT for
hooks.slack.com itself, ends the TLS with a certificate made for the test (which the client trusts
through ``REQUESTS_CA_BUNDLE``), and hands the request inside to an ``HttpReceiver``. So the real Slack plugin
sends its real payload, and the test reads it.

``silent_server`` is the other kind of peer: one that accepts connections and never answers (a hung
Redis, say).
"""

from __future__ import annotations

import datetime
import email
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True, slots=True)
class Received:
    """One HTTP request a receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class HttpReceiver:
    """An HTTP server on 127.0.0.1 that keeps every request and answers 200.

    ``hold()`` makes it keep each request waiting (a receiver that hangs) until ``release()``;
    ``stop()`` and ``start()`` again on the same port stand for a receiver that is down, then back.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[Received] = []
        self._lock = threading.Condition()
        self._open = threading.Event()
        self._open.set()
        self.waiting = 0  # requests held now
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> HttpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                receiver._handle(self)

            do_PUT = do_POST  # noqa: N815  # http.server's naming

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length)
        with self._lock:
            self.waiting += 1
            self._lock.notify_all()
        self._open.wait(timeout=60)
        with self._lock:
            self.waiting -= 1
            self.received.append(Received(handler.command, handler.path, dict(handler.headers), body))
            self._lock.notify_all()
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "text/plain")
            handler.send_header("Content-Length", "2")
            handler.end_headers()
            handler.wfile.write(b"ok")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting

    def handle_tunnelled(self, handler: BaseHTTPRequestHandler) -> None:
        """Take a request that arrived through ``SlackProxy``'s tunnel."""
        self._handle(handler)

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def wait_for(self, predicate: Callable[[HttpReceiver], bool], timeout: float = 30) -> None:
        """Wait until ``predicate(self)`` holds (the deadline only bounds a failure)."""
        with self._lock:
            if not self._lock.wait_for(lambda: predicate(self), timeout=timeout):
                raise AssertionError(f"receiver on {self.port}: waited {timeout} s; got {self.received}")

    def stop(self) -> None:
        if self._server is not None:
            self._open.set()
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class SlackProxy:
    """An HTTPS proxy (``HTTPS_PROXY``) that answers for Slack: every request tunnelled through it
    goes to ``receiver``, whatever host the client asked for."""

    def __init__(self, receiver: HttpReceiver, directory: Path) -> None:
        self.receiver = receiver
        self.port = free_port()
        self.hosts: list[str] = []  # the hosts clients asked to reach (CONNECT)
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate, key = _self_signed("hooks.slack.com", directory)
        self._context.load_cert_chain(certificate, key)
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SlackProxy:
        proxy = self

        class Tunnel(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_CONNECT(self) -> None:
                proxy.hosts.append(self.path)
                self.send_response(200, "Connection established")
                self.end_headers()
                self.wfile.flush()
                # From here on the client speaks TLS to "hooks.slack.com": end it here, and read the
                # requests inside as if they had come straight.
                self.connection = proxy._context.wrap_socket(self.connection, server_side=True)
                self.rfile = self.connection.makefile("rb")
                self.wfile = self.connection.makefile("wb", buffering=0)
                self.close_connection = False

            def do_POST(self) -> None:
                proxy.receiver.handle_tunnelled(self)

            def finish(self) -> None:
                super().finish()
                if isinstance(self.connection, ssl.SSLSocket):  # wrapping detached the plain socket
                    self.connection.close()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Tunnel)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _self_signed(host: str, directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    certificate_path, key_path = directory / "slack.pem", directory / "slack.key"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return certificate_path, key_path


class SmtpReceiver:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it is sent."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[Message] = []
        self._lock = threading.Condition()
        receiver = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802  # aiosmtpd's
                message = email.message_from_bytes(envelope.content)
                with receiver._lock:
                    receiver.messages.append(message)
                    receiver._lock.notify_all()
                return "250 Message accepted for delivery"

        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def wait_for(self, count: int, timeout: float = 30) -> list[Message]:
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.messages) >= count, timeout=timeout):
                raise AssertionError(
                    f"SMTP: waited {timeout} s for {count} messages; got {len(self.messages)}"
                )
            return list(self.messages)


def text_of(message: Message) -> str:
    """The plain text of an email (its text part when it has several)."""
    part = next((p for p in message.walk() if p.get_content_type() == "text/plain"), message)
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(part.get_content_charset() or "utf-8")


@contextmanager
def silent_server() -> Iterator[int]:
    """A TCP server on a free port that accepts connections and never answers (a hung Redis)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        listener.close()
