"""What an attacker tried at the door: chunked bodies past the limit, and clients that never finish.

A real ``serve`` on real sockets: headers and bodies have deadlines, bodies a size, on every
route and page form, and nobody else waits meanwhile.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx2
import pytest

from tests.live_service import Service, running_service

# Reliability: the service as a process, through faults that take seconds.
pytestmark = [pytest.mark.slow, pytest.mark.e2e]

LIMIT = 64 * 1024
DEADLINE = 2


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[Service]:
    workdir = tmp_path_factory.mktemp("edge")
    settings = {
        "SUPERVISOR_MAX_BODY_BYTES": str(LIMIT),
        "SUPERVISOR_HEADER_TIMEOUT_SECONDS": str(DEADLINE),
        "SUPERVISOR_BODY_TIMEOUT_SECONDS": str(DEADLINE),
        "REDIS_URL": "",
    }
    with running_service(f"sqlite:///{workdir / 'ledger.db'}", workdir, **settings) as running:
        yield running


def connect(service: Service) -> socket.socket:
    host, port = service.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=60)


def answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def chunked(path: str, content_type: str, chunks: int, size: int = 16 * 1024) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
    head += "Transfer-Encoding: chunked\r\n\r\n"
    piece = f"{size:x}\r\n".encode() + b"[" * size + b"\r\n"
    return head.encode() + piece * chunks


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/v1/events", "application/json"),
        ("/api/v1/jobs", "application/x-www-form-urlencoded"),
        ("/api/v1/jobs/abc/started", "application/x-www-form-urlencoded"),
        ("/restart", "application/x-www-form-urlencoded"),
        ("/sidekiq/retries", "application/x-www-form-urlencoded"),
    ],
)
def test_a_chunked_body_past_the_limit_is_refused_while_it_comes(service, path, content_type):
    with connect(service) as sock:
        # Twice the limit, never terminated: the server must answer without waiting for the end.
        sock.sendall(chunked(path, content_type, chunks=2 * LIMIT // (16 * 1024) + 1))
        reply = answer(sock)

    status = reply.split(b"\r\n", 1)[0]
    assert b" 413 " in status, reply[:300]
    body = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    assert f"larger than {LIMIT} bytes" in body["error"]


def test_a_body_that_stops_coming_is_cut_off_with_408(service):
    with connect(service) as sock:
        sock.sendall(
            b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 1000\r\n\r\njob_id=abc&a"
        )
        reply = answer(sock)

    assert b" 408 " in reply.split(b"\r\n", 1)[0], reply[:300]
    assert f"within {DEADLINE} s".encode() in reply


def test_half_sent_headers_are_closed_and_many_of_them_stop_nobody(service):
    slow = []
    for _ in range(300):
        sock = connect(service)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Half: ")
        slow.append(sock)
    silent = connect(service)  # connects and sends nothing at all
    try:
        # Everyone else is still answered meanwhile.
        assert httpx2.get(f"{service.url}/healthz", timeout=30, trust_env=False).status_code == 200
        # And each slow client is cut off once its deadline passes (the server closes: recv gives b"").
        for sock in [*slow, silent]:
            assert answer(sock) == b""
    finally:
        for sock in [*slow, silent]:
            sock.close()


def test_a_kept_alive_connection_still_serves_request_after_request(service):
    with httpx2.Client(base_url=service.url, timeout=30, trust_env=False) as client:
        first = client.get("/healthz")
        time.sleep(0.5)
        second = client.get("/healthz")

    assert (first.status_code, second.status_code) == (200, 200)
