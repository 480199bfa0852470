"""One write per turn of the event loop: a response's head and body leave together, nothing is
held past the turn, a large write goes at once, and closing writes what is held first."""

from __future__ import annotations

import asyncio
import socket

import uvloop

from sidekiq_supervisor.web.http_protocol import FLUSH_AT_BYTES, OneWritePerTurn


def on_both_loops(scenario) -> None:
    """Run ``scenario`` on asyncio's own loop and on uvloop (the one ``serve`` runs)."""
    asyncio.run(scenario())
    uvloop.run(scenario())


async def connected() -> tuple[OneWritePerTurn, socket.socket]:
    """A real transport on one end of a socket pair, wrapped; the other end, not blocking."""
    ours, peer = socket.socketpair()
    peer.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, sock=ours)
    return OneWritePerTurn(transport, loop), peer


def received(peer: socket.socket) -> bytes:
    """What has arrived at ``peer`` so far, without waiting."""
    chunks = []
    while True:
        try:
            chunk = peer.recv(1 << 20)
        except BlockingIOError:
            return b"".join(chunks)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def test_the_writes_of_one_turn_leave_together_when_the_turn_ends():
    async def scenario():
        writes, peer = await connected()
        writes.write(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n")
        writes.write(b"body")
        held = received(peer)
        await asyncio.sleep(0)  # the loop runs what was ready: the flush, then this task
        await asyncio.sleep(0.05)
        assert held == b""
        assert received(peer) == b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nbody"
        writes.write(b"next")
        await asyncio.sleep(0.05)
        assert received(peer) == b"next"
        writes.close()
        peer.close()

    on_both_loops(scenario)


def test_a_large_write_goes_at_once():
    async def scenario():
        writes, peer = await connected()
        writes.write(b"head")
        writes.write(b"x" * FLUSH_AT_BYTES)
        await asyncio.sleep(0.05)  # the socket's own buffer may take a turn to pass it on
        assert received(peer) == b"head" + b"x" * FLUSH_AT_BYTES
        writes.close()
        peer.close()

    async def before_the_turn_ends():
        writes, peer = await connected()
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * FLUSH_AT_BYTES)
        writes.write(b"x" * FLUSH_AT_BYTES)
        # No await between: the write reached the transport, which sends what the socket takes.
        assert received(peer) != b""
        writes.close()
        peer.close()

    on_both_loops(scenario)
    on_both_loops(before_the_turn_ends)


def test_closing_writes_what_is_held_then_closes():
    async def scenario():
        writes, peer = await connected()
        writes.write(b"last words")
        writes.close()
        assert writes.is_closing()
        await asyncio.sleep(0.05)
        assert received(peer) == b"last words"
        assert peer.recv(1) == b""  # the end of the stream
        writes.write(b"too late")  # dropped, as the transport drops writes once closing
        await asyncio.sleep(0.05)
        peer.close()

    on_both_loops(scenario)


def test_an_aborted_connection_drops_what_is_held():
    async def scenario():
        writes, peer = await connected()
        writes.write(b"never sent")
        writes.abort()
        await asyncio.sleep(0.05)
        assert received(peer) == b""
        peer.close()

    on_both_loops(scenario)
