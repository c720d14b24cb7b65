"""A WebSocket echo and event-stream upstream fast enough never to be what a
benchmark measures (make bench, scenarios W, R and S).

    python -m bench.liveupstream --port 9201

A bare asyncio protocol (uvloop when installed), no library on the message
path: any request asking to upgrade becomes a WebSocket that sends every
message back as it came (unmasked, same opcode); GET /sse is an event stream
of `data: {"n": <1, 2, ...>, "t": <time.time() when sent>}`, one event a
second from a random phase; anything else is a small 200 (readiness).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import random
import socket
import time

from bench.wsframes import Frames, frame

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


def accept_key(key: str) -> bytes:
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest())


class Live(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.frames: Frames | None = None
        self.tick: asyncio.TimerHandle | None = None
        self.sent = 0
        self.started = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        with contextlib.suppress(OSError):
            transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.tick is not None:
            self.tick.cancel()

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if self.frames is not None:
            self._echo(data)
            return
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head, rest = self.buffer[:end].decode("latin-1"), self.buffer[end + 4 :]
        self.buffer = b""
        lines = head.split("\r\n")
        target = lines[0].split(" ")[1]
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:])
        }
        if headers.get("upgrade", "").lower() == "websocket":
            self.transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                + accept_key(headers["sec-websocket-key"])
                + b"\r\n\r\n"
            )
            self.frames = Frames()
            if rest:
                self._echo(rest)
        elif target.startswith("/sse"):
            self.transport.write(SSE_HEAD)
            loop = asyncio.get_running_loop()
            self.started = loop.time() + random.random()
            self.tick = loop.call_at(self.started, self._event)
        else:
            self.transport.write(OK)

    def _echo(self, data: bytes) -> None:
        assert self.transport is not None and self.frames is not None
        out = []
        for opcode, payload in self.frames.feed(data):
            if opcode == 8:  # close: answer it and hang up
                self.transport.write(b"".join(out) + frame(8, payload))
                self.transport.close()
                return
            if opcode == 9:
                out.append(frame(10, payload))
            elif opcode != 10:
                out.append(frame(opcode, payload))
        if out:
            self.transport.write(b"".join(out))

    def _event(self) -> None:
        assert self.transport is not None
        self.sent += 1
        data = b'data: {"n":%d,"t":%.6f}\n\n' % (self.sent, time.time())
        self.transport.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.tick = asyncio.get_running_loop().call_at(self.started + self.sent, self._event)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Live, "127.0.0.1", port, backlog=16384)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    run = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        run = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        run(serve(args.port))


if __name__ == "__main__":
    main()
