"""One upstream WebSocket connection on the `websockets` library's Sans-I/O
protocol (`websockets.client.ClientProtocol`): the library parses and builds
every byte (the handshake, framing, masking, size limits, pings, the close
handshake); this class only moves bytes between it and the socket.

Why not the library's asyncio client: its per-message locks, context
managers and message assembler cost about as much CPU as the relay's whole
client side (uvicorn's), and a relay has no use for them: it reads one
message at a time and never sends from two tasks at once. The library
documents this layer for exactly such integrations.

Flow control: at most one message waits to be read (the socket is not read
meanwhile), and `send` waits while more than `write_limit` bytes are queued
for the socket.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State

__all__ = ["CLOSE_TIMEOUT", "UpstreamSocket"]

CLOSE_TIMEOUT = 5.0
_SEND_EOF = b""  # what ClientProtocol.data_to_send() yields for "half-close now"


class UpstreamSocket(asyncio.Protocol):
    def __init__(self, protocol: ClientProtocol, write_limit: int) -> None:
        self.protocol = protocol
        self.transport: Any = None  # asyncio.Transport (uvloop's is not a subclass)
        self._write_limit = write_limit
        loop = asyncio.get_running_loop()
        self._handshake: asyncio.Future[None] = loop.create_future()
        self._lost: asyncio.Future[None] = loop.create_future()
        self._messages: collections.deque[str | bytes] = collections.deque()
        self._fragments: list[bytes] = []
        self._fragments_text = False
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._reading = True
        self._hangup: asyncio.TimerHandle | None = None
        self._broken = False  # a message this side refused (not valid UTF-8)
        self._closing = False  # close() was called: messages are no longer wanted

    # --- the public side: what the relay uses ------------------------------------------
    @property
    def state(self) -> State:
        return self.protocol.state

    @property
    def subprotocol(self) -> str | None:
        return self.protocol.subprotocol

    async def handshake(self) -> None:
        """Wait for the upstream's answer; raise the library's InvalidHandshake
        (InvalidStatus when it answered with a status) or OSError."""
        await self._handshake

    async def recv(self) -> str | bytes:
        """The next message; ConnectionClosed once there is none."""
        while not self._messages:
            if self._lost.done():
                raise self.protocol.close_exc
            protocol = self.protocol
            if protocol.state is State.CLOSING and (
                protocol.close_rcvd is not None or protocol.parser_exc is not None or self._broken
            ):  # the upstream closed, or broke the protocol: nothing more will come
                raise ConnectionClosed(
                    protocol.close_rcvd, protocol.close_sent, protocol.close_rcvd_then_sent
                )
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        message = self._messages.popleft()
        if not self._reading and not self._lost.done():
            self._reading = True
            self.transport.resume_reading()
        return message

    async def send(self, data: str | bytes) -> None:
        """Send one message; ConnectionClosed when the connection is closing."""
        if self.protocol.state is not State.OPEN:
            raise ConnectionClosed(self.protocol.close_rcvd, self.protocol.close_sent)
        if isinstance(data, str):
            self.protocol.send_text(data.encode())
        else:
            self.protocol.send_binary(data)
        self._flush()
        if self._drain is not None:
            await asyncio.shield(self._drain)

    async def close(self, code: int, reason: str) -> None:
        """The closing handshake, then the TCP connection: the upstream has
        CLOSE_TIMEOUT seconds to answer and hang up before it is cut. What it
        still sends meanwhile is read and dropped (nobody will relay it, and
        an upstream blocked on sending it would never read the close)."""
        self._closing = True
        self._messages.clear()
        if not self._reading and not self._lost.done():
            self._reading = True
            self.transport.resume_reading()
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(code, reason)
            self._flush()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await asyncio.shield(self._lost)
        except TimeoutError:
            self.transport.abort()

    # --- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(high=self._write_limit)  # type: ignore[attr-defined]
        self._flush()  # the handshake request

    def data_received(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Frame):
                self._frame(event)
            elif isinstance(event, Response) and not self._handshake.done():
                self._handshake_done()
        if not self._handshake.done() and self.protocol.handshake_exc is not None:
            self._handshake_done()
        self._flush()  # pongs, the answer to a close, a failure's close
        if self._hangup is None and self.protocol.close_expected():
            # the upstream should hang up now; if it does not, it is cut
            loop = asyncio.get_running_loop()
            self._hangup = loop.call_later(CLOSE_TIMEOUT, self.transport.abort)
        if self._messages and self._reading:
            self._reading = False
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._flush()
        return None  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        if self._hangup is not None:
            self._hangup.cancel()
        if self.protocol.state is not State.CLOSED:
            self.protocol.receive_eof()  # state CLOSED, close_exc without a close frame
        if not self._handshake.done():
            self._handshake.set_exception(exc or ConnectionError("closed during the handshake"))
            self._handshake.exception()  # retrieved: a dropped connection is an ordinary outcome
        self._lost.set_result(None)
        self._wake()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def pause_writing(self) -> None:
        if self._drain is None:
            self._drain = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    # --- internals ------------------------------------------------------------------------
    def _handshake_done(self) -> None:
        error = self.protocol.handshake_exc
        if error is None:
            self._handshake.set_result(None)
        else:
            self._handshake.set_exception(error)
            self._handshake.exception()

    def _frame(self, frame: Frame) -> None:
        opcode, data = frame.opcode, frame.data
        if not isinstance(data, bytes):  # the parser makes bytes; the type allows views
            data = bytes(data)
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            self._fragments_text = opcode is Opcode.TEXT
            if not frame.fin:
                self._fragments = [data]
                return
            self._message(data)
        elif opcode is Opcode.CONT:
            self._fragments.append(data)
            if frame.fin:
                whole, self._fragments = b"".join(self._fragments), []
                self._message(whole)

    def _message(self, data: bytes) -> None:
        if self._closing:
            return
        if not self._fragments_text:
            self._messages.append(data)
            return
        try:
            self._messages.append(data.decode())
        except UnicodeDecodeError:
            self._broken = True
            self.protocol.fail(CloseCode.INVALID_DATA, "invalid UTF-8")

    def _flush(self) -> None:
        chunks = self.protocol.data_to_send()
        if not chunks or self._lost.done():
            return
        eof = chunks[-1] == _SEND_EOF
        data = b"".join(chunks)
        if data:
            self.transport.write(data)
        if eof and self.transport.can_write_eof():
            self.transport.write_eof()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
