"""UpstreamSocket (gateway/upstream/wsconnection.py) against a raw TCP server
that writes WebSocket frames byte by byte as a misbehaving upstream might:
fragments, bad UTF-8, pings, oversized messages, refusals."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Awaitable, Callable

import pytest
from websockets.exceptions import ConnectionClosed

from gateway.types import Failure
from gateway.upstream.wsconnection import UpstreamSocket
from gateway.upstream.wsopen import HandshakeFailed, open_websocket
from tests.rawserver import RawServer

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
type Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    assert len(payload) < 126
    return bytes(((0x80 if fin else 0) | opcode, len(payload))) + payload


async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    key = next(
        line.split(b":", 1)[1].strip()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    digest = base64.b64encode(hashlib.sha1(key + GUID).digest())
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + digest + b"\r\n\r\n"
    )


def upstream(script: Script) -> RawServer:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept(reader, writer)
        await script(reader, writer)
        await reader.read()  # until the gateway hangs up

    return RawServer(handler)


async def opened(port: int, max_size: int = 1024) -> UpstreamSocket:
    socket = await open_websocket(
        f"ws://127.0.0.1:{port}/ws", [], None, max_size=max_size, open_timeout=2
    )
    assert isinstance(socket, UpstreamSocket)
    return socket


async def test_fragments_are_one_message_and_text_is_str() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(frame(1, "hé".encode()[:2], fin=False))  # split inside a character
        writer.write(frame(9, b"ping-in-between"))  # control frames may interleave
        writer.write(frame(0, "hé".encode()[2:] + b"llo"))
        writer.write(frame(2, b"\x00\xff"))

    async with upstream(script) as port:
        socket = await opened(port)
        assert await socket.recv() == "héllo"
        assert await socket.recv() == b"\x00\xff"
        socket.transport.abort()


async def test_invalid_utf8_closes_with_1007() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(frame(1, b"\xff\xfe"))

    async with upstream(script) as port:
        socket = await opened(port)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 2)
    assert closed.value.sent is not None and closed.value.sent.code == 1007


async def test_a_message_over_max_size_closes_with_1009() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(frame(2, b"x" * 100))

    async with upstream(script) as port:
        socket = await opened(port, max_size=64)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 2)
    assert closed.value.sent is not None and closed.value.sent.code == 1009


async def test_pings_are_answered_and_a_close_is_passed_on() -> None:
    got: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(frame(9, b"are you there"))
        got.append(await reader.readexactly(2 + 4 + len(b"are you there")))  # masked pong
        writer.write(frame(8, (4000).to_bytes(2, "big") + b"bye"))
        got.append(await reader.readexactly(2 + 4 + 5))  # the close echoed back
        writer.close()
        done.set()

    done = asyncio.Event()
    async with upstream(script) as port:
        socket = await opened(port)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 2)
        await asyncio.wait_for(done.wait(), 2)
    assert got[0][0] == 0x8A and got[1][0] == 0x88  # a pong, then a close
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4000, "bye")


async def test_a_dropped_connection_is_a_close_without_a_frame() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.transport.abort()

    async with upstream(script) as port:
        socket = await opened(port)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 2)
    assert closed.value.rcvd is None


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
            HandshakeFailed(Failure.STATUS, 403),
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", HandshakeFailed(Failure.STATUS, 200)),
        (b"not http at all\r\n\r\n", HandshakeFailed(Failure.INVALID)),
    ],
)
async def test_refused_handshakes(answer: bytes, expected: HandshakeFailed) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    async with RawServer(handler) as port:
        result = await open_websocket(
            f"ws://127.0.0.1:{port}/ws", [], None, max_size=1024, open_timeout=2
        )
    assert result == expected


async def test_a_silent_upstream_times_out_the_handshake() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async with RawServer(handler) as port:
        result = await open_websocket(
            f"ws://127.0.0.1:{port}/ws", [], None, max_size=1024, open_timeout=0.2
        )
    assert result == HandshakeFailed(Failure.TIMEOUT)
