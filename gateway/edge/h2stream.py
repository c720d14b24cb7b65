"""One HTTP/2 request: its ASGI scope, `receive` and `send`.

The connection (gateway/edge/h2server.py) feeds it body bytes and window
credit; it hands the application one `http.request` message per run of body
received, and gives the bytes' flow-control credit back only then, so a
client can have at most one window (64 KiB) of body waiting per stream.

`send` writes as far as the client's flow-control windows allow and waits
for credit past that. The gateway's handler gives each send that could wait
(`may_block()`: the socket is full, or the window is under a piece)
CLIENT_SEND_TIMEOUT: a client that never opens its window is cut off, and
`cut()` ends its connection with GOAWAY.
Trailers (`http.response.trailers`) end the stream as a HEADERS frame.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import h2.exceptions

from gateway.types import Message, Scope

if TYPE_CHECKING:
    from gateway.edge.h2server import H2Protocol

__all__ = ["CONNECTION_HEADERS", "H2Stream"]

logger = logging.getLogger("gateway")

_PIECE = 1024 * 1024  # the largest piece the handler sends at once (edge/handler.py)
# RFC 9113 8.2.2: connection-specific fields are malformed in HTTP/2.
CONNECTION_HEADERS = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)


class H2Stream:
    __slots__ = (
        "body",
        "body_done",
        "bodyless",
        "complete",
        "delivered_end",
        "disconnected",
        "event",
        "more_body",
        "protocol",
        "scope",
        "started",
        "stream_id",
        "trailers_expected",
        "unacked",
        "window",
    )

    def __init__(self, protocol: H2Protocol, stream_id: int, scope: Scope, *, ended: bool) -> None:
        self.protocol = protocol
        self.stream_id = stream_id
        self.scope = scope
        self.body = bytearray()
        self.unacked = 0  # flow-controlled bytes received, credit not yet given back
        self.more_body = not ended
        self.delivered_end = False
        self.event = asyncio.Event()  # body arrived, the request ended, or the client left
        self.window = asyncio.Event()  # send credit arrived
        self.disconnected = False
        self.started = False
        self.body_done = False
        self.complete = False
        self.trailers_expected = False
        self.bodyless = False

    # --- from the connection --------------------------------------------------
    def received(self, data: bytes, flow_controlled: int, *, ended: bool) -> None:
        self.body += data
        self.unacked += flow_controlled
        if ended:
            self.more_body = False
        self.event.set()

    def ended(self) -> None:
        self.more_body = False
        self.event.set()

    def gone(self) -> None:
        """The client reset the stream, or the connection closed."""
        self.disconnected = True
        self.event.set()
        self.window.set()

    # --- what the gateway reads of the server (gateway/asgi.py) ---------------
    def may_block(self) -> bool:
        """Could a send wait: the socket full, or a window too small for a
        piece of an answer (the handler sends at most 1 MiB at once)."""
        if self.protocol.write_paused:
            return True
        try:
            return self.protocol.conn.local_flow_control_window(self.stream_id) < _PIECE
        except h2.exceptions.StreamClosedError:
            return False

    def cut(self, *, flush: bool) -> None:
        """End the answer unfinished. An answer that failed while it was sent
        (`flush`) resets its own stream only: the connection's other streams
        go on. A client that read nothing for CLIENT_SEND_TIMEOUT loses its
        connection (GOAWAY), as an HTTP/1.1 client would."""
        self.gone()
        if flush:
            self.protocol.reset(self.stream_id)
        else:
            self.protocol.cut("read nothing of its answer")

    # --- ASGI -------------------------------------------------------------------
    async def receive(self) -> Message:
        while True:
            if self.disconnected or self.complete:
                return {"type": "http.disconnect"}
            if self.body or (not self.more_body and not self.delivered_end):
                chunk = bytes(self.body)
                self.body.clear()
                if self.unacked:
                    self.protocol.acknowledge(self.stream_id, self.unacked)
                    self.unacked = 0
                if not self.more_body:
                    self.delivered_end = True
                return {"type": "http.request", "body": chunk, "more_body": self.more_body}
            self.event.clear()
            await self.event.wait()

    async def send(self, message: Message) -> None:
        if self.disconnected:
            return
        kind = message["type"]
        if not self.started:
            if kind != "http.response.start":
                raise RuntimeError(f"expected http.response.start, got {kind!r}")
            self.started = True
            self.trailers_expected = bool(message.get("trailers", False))
            status = int(message["status"])
            self.bodyless = self.scope["method"] == "HEAD" or status in (204, 304)
            headers = [(b":status", str(status).encode())]
            for name, value in message.get("headers", ()):
                name = bytes(name).lower()
                if (
                    name in CONNECTION_HEADERS
                    or name[:1] == b":"
                    or (name == b"te" and value.lower() != b"trailers")
                ):
                    continue
                headers.append((name, bytes(value)))
            self._call(self.protocol.conn.send_headers, self.stream_id, headers)
            self.protocol.flush()
        elif kind == "http.response.body" and not self.body_done:
            body = message.get("body", b"")
            more = bool(message.get("more_body", False))
            if body and not self.bodyless:
                await self._write(body)
            if not more:
                self.body_done = True
                if not self.trailers_expected:
                    self._finish()
            elif self.protocol.write_paused:
                await self.protocol.drain()
        elif kind == "http.response.trailers" and self.body_done and not self.complete:
            if not message.get("more_trailers", False):
                trailers = [
                    (bytes(name).lower(), bytes(value))
                    for name, value in message.get("headers", ())
                    if not bytes(name).startswith(b":")
                    and bytes(name).lower() not in CONNECTION_HEADERS
                ]
                if trailers:
                    self._call(
                        self.protocol.conn.send_headers, self.stream_id, trailers, end_stream=True
                    )
                    self.protocol.flush()
                    self._done()
                else:
                    self._finish()
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} on an HTTP/2 stream")

    # --- writing ----------------------------------------------------------------
    async def _write(self, body: bytes) -> None:
        conn = self.protocol.conn
        view = memoryview(body)
        while view and not self.disconnected:
            try:
                room = min(
                    conn.local_flow_control_window(self.stream_id), conn.max_outbound_frame_size
                )
            except h2.exceptions.StreamClosedError:
                self.gone()
                return
            if room <= 0:
                self.window.clear()
                await self.window.wait()
                continue
            self._call(conn.send_data, self.stream_id, view[:room])
            view = view[room:]
            self.protocol.flush()
            if self.protocol.write_paused:
                await self.protocol.drain()

    def _finish(self) -> None:
        self._call(self.protocol.conn.end_stream, self.stream_id)
        self.protocol.flush()
        self._done()

    def _done(self) -> None:
        self.complete = True
        self.event.set()
        self.protocol.finished(self)

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> None:
        """An h2 send; a stream the client has reset in the meantime is gone."""
        if self.disconnected:
            return
        try:
            method(*args, **kwargs)
        except h2.exceptions.StreamClosedError:
            self.gone()
        except h2.exceptions.ProtocolError as exc:  # a header h2 will not send
            logger.warning("HTTP/2 stream %d: cannot send the answer: %s", self.stream_id, exc)
            self.gone()
            self.protocol.reset(self.stream_id)
