"""One WebSocket pair relayed (SPEC 3.11): the client through uvicorn's ASGI
messages, the upstream through an UpstreamSocket (websockets' Sans-I/O protocol).

Messages, text and binary, go through in order both ways, one at a time: the
next is read from a side only once the last has been handed to the other side,
whose writes wait while its socket buffer is full. A slow reader therefore
pauses its peer, and a pair never holds more than about two maximal messages.

How a pair ends, and what each side is told:

    the client closes (code, reason)      the upstream gets the same close
    the client leaves without a close     upstream 1001
    the upstream closes (code, reason)    the client gets the same close
    the upstream fails (no close frame)   client 1011
    a message over max_message_size       its sender 1009, the other side 1001
    no message either way for idle_timeout  both 1001
    the client reads nothing for CLIENT_SEND_TIMEOUT
                                          client cut off (reset), upstream 1001
    the process drains (SIGTERM)          client 1012, upstream 1001

Close codes that may not be sent on the wire (1005, 1006, 1015) become 1000
(a close without a code) or 1001 (a side that left).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from gateway.asgi import cut_connection, may_block
from gateway.envelope import RelayLog
from gateway.lifecycle import lifecycle
from gateway.upstream.wsconnection import UpstreamSocket

__all__ = ["Relay"]

CLIENT_LEFT = 1001  # going away
UPSTREAM_FAILED = 1011
TOO_BIG = 1009
RESTART = 1012


def _sendable(code: int | None, otherwise: int) -> int:
    """A code that may appear in a close frame (RFC 6455 7.4)."""
    if code is not None and (1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999):
        return code
    return otherwise


class Relay:
    def __init__(
        self,
        receive: Any,
        send: Any,
        upstream: UpstreamSocket,
        *,
        max_size: int,
        idle_timeout: float,
        counters: tuple[Any, Any],
        send_timeout: float = 30.0,
    ) -> None:
        self._receive = receive
        self._send = send
        self._upstream = upstream
        self._max_size = max_size
        self._idle = idle_timeout
        self._send_timeout = send_timeout
        self._to_upstream, self._to_client = counters
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self._closer: asyncio.Task[None] | None = None
        self._ending = False
        self.log = RelayLog()

    async def run(self) -> RelayLog:
        self._timer = self._loop.call_at(self._last + self._idle, self._check_idle)
        lifecycle.open_ended.add(self.drain)
        downstream = asyncio.create_task(self._from_upstream())
        try:
            await self._from_client()
            await downstream
        finally:
            lifecycle.open_ended.discard(self.drain)
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if not downstream.done():
                downstream.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await downstream
            if self._closer is not None:
                closer, self._closer = self._closer, None
                await closer
            if self._upstream.state is not State.CLOSED:
                self._upstream.transport.abort()
        return self.log

    # --- the two directions ---------------------------------------------------------
    async def _from_client(self) -> None:
        receive, upstream = self._receive, self._upstream
        while True:
            message = await receive()
            if message["type"] == "websocket.receive":
                data = message.get("text")
                if data is None:
                    data = message.get("bytes") or b""
                if self._too_big(data):
                    self._end_by_gateway(TOO_BIG, CLIENT_LEFT, "message too big")
                    continue
                self._last = self._loop.time()
                self.log.to_upstream += 1
                self._to_upstream.inc()
                with contextlib.suppress(ConnectionClosed):  # _from_upstream will see it
                    await upstream.send(data)
            elif message["type"] == "websocket.disconnect":
                if not self._ending:
                    self._ending = True
                    code = message.get("code")
                    self.log.close_code, self.log.closed_by = code, "client"
                    reason = message.get("reason") or ""
                    if code == TOO_BIG:  # uvicorn refused a message over its limit
                        code, reason, self.log.closed_by = CLIENT_LEFT, "", "gateway"
                    await self._close_upstream(_sendable(code, CLIENT_LEFT), reason)
                return

    async def _from_upstream(self) -> None:
        upstream, send = self._upstream, self._send
        try:
            while True:
                data = await upstream.recv()
                self._last = self._loop.time()
                self.log.to_client += 1
                self._to_client.inc()
                message: dict[str, str | bytes]
                if isinstance(data, str):
                    message = {"type": "websocket.send", "text": data}
                else:
                    message = {"type": "websocket.send", "bytes": data}
                if not may_block(send):
                    await send(message)
                    continue
                async with asyncio.timeout(self._send_timeout):
                    await send(message)
        except TimeoutError:  # the client read nothing: it holds an upstream connection
            if not self._ending:
                self._ending = True
                self.log.close_code, self.log.closed_by = CLIENT_LEFT, "gateway"
                self.log.cut = "send_timeout"
                cut_connection(send, flush=False)
                await self._close_upstream(CLIENT_LEFT, "")
        except ConnectionClosed as exc:
            if self._ending:
                return
            self._ending = True
            self.log.closed_by = "upstream"
            if exc.sent is not None and exc.sent.code == TOO_BIG:  # the library refused it
                self.log.close_code, self.log.closed_by = TOO_BIG, "gateway"
                await self._close_client(CLIENT_LEFT, "")
            elif exc.rcvd is None:  # no close frame: the upstream failed
                await self._close_client(UPSTREAM_FAILED, "upstream failed")
            else:
                self.log.close_code = exc.rcvd.code
                await self._close_client(_sendable(exc.rcvd.code, 1000), exc.rcvd.reason)
        except OSError:  # the client is gone (uvicorn's ClientDisconnected)
            if not self._ending:
                self._ending = True
                self.log.closed_by = "client"
                await self._close_upstream(CLIENT_LEFT, "")

    # --- ending -------------------------------------------------------------------------
    def _too_big(self, data: str | bytes) -> bool:
        size = len(data)
        if isinstance(data, str) and size * 4 > self._max_size >= size:
            size = len(data.encode())
        return size > self._max_size

    def _check_idle(self) -> None:
        idle_until = self._last + self._idle
        if self._loop.time() >= idle_until:
            self._timer = None
            self._end_by_gateway(CLIENT_LEFT, CLIENT_LEFT, "idle")
        else:
            self._timer = self._loop.call_at(idle_until, self._check_idle)

    def drain(self) -> None:
        """SIGTERM: the client may reconnect elsewhere (1012), the upstream is left."""
        self._end_by_gateway(RESTART, CLIENT_LEFT, "service restart")

    def _end_by_gateway(self, client_code: int, upstream_code: int, reason: str) -> None:
        if self._ending:
            return
        self._ending = True
        self.log.close_code, self.log.closed_by = client_code, "gateway"
        self._closer = asyncio.ensure_future(self._close_both(client_code, upstream_code, reason))

    async def _close_both(self, client_code: int, upstream_code: int, reason: str) -> None:
        await self._close_client(client_code, reason)
        await self._close_upstream(upstream_code, reason)

    async def _close_client(self, code: int, reason: str) -> None:
        with contextlib.suppress(OSError, RuntimeError):  # already gone
            await self._send({"type": "websocket.close", "code": code, "reason": reason})

    async def _close_upstream(self, code: int, reason: str) -> None:
        with contextlib.suppress(ConnectionClosed, OSError):
            await self._upstream.close(code, reason)
