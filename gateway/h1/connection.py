"""One HTTP/1.1 keep-alive connection to an upstream.

A connection serves one request/response cycle at a time (no pipelining).
`request()` writes the request and waits for the response headers; `chunks()`
yields the body as it arrives, pausing the socket while the reader is behind;
`release()` hands the connection back to its pool, reusable only when the
response was read to its end and the server keeps the connection alive.

Pool bookkeeping goes through `state`: "active" (lent out), "idle" (in the
pool) or "gone" (closed and no longer counted). An idle connection the server
closes tells its pool through `on_lost`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Literal

import httptools

__all__ = ["H1Connection", "ServerDisconnected", "UpstreamProtocolError"]

HIGH_WATER = 256 * 1024  # buffered body bytes before the socket is paused
LOW_WATER = 64 * 1024

type Head = tuple[int, list[tuple[bytes, bytes]]]


class ServerDisconnected(ConnectionError):
    """The server closed the connection before the response was complete.
    `stale`: no byte of a response had come on a reused connection, so the
    server most likely closed it as idle and never saw the request."""

    def __init__(self, message: str, *, stale: bool) -> None:
        super().__init__(message)
        self.stale = stale


class UpstreamProtocolError(Exception):
    """The upstream answered something that is not HTTP/1.1."""


class H1Connection(asyncio.Protocol):
    def __init__(self, on_lost: Callable[[H1Connection], None]) -> None:
        self._on_lost = on_lost
        self.state: Literal["active", "idle", "gone"] = "active"
        self.transport: asyncio.Transport | None = None
        self.reused = False  # has served a request before
        self.idle_since = time.monotonic()
        self.closed = False
        self._parser: httptools.HttpResponseParser | None = None
        self._head_waiter: asyncio.Future[Head] | None = None
        self._body: deque[bytes] = deque()
        self._buffered = 0
        self._body_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._status = 0
        self._no_body = False  # a response to HEAD: the headers are all of it
        self._until_close = False  # neither a length nor chunked: the body ends with the connection
        self._complete = False
        self._keep_alive = False
        self._seen_bytes = False
        self._paused = False
        self._error: BaseException | None = None

    # --- asyncio.Protocol ------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:  # nothing may arrive between responses
            self.close()
            return
        self._seen_bytes = True
        try:
            parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamProtocolError(f"invalid HTTP response: {exc}"))
            return
        if self._no_body and self._status and not self._complete:
            self._finish()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.resume_writing()
        if self.state == "idle":
            self._on_lost(self)
            return
        if self._parser is None or self._complete:
            return
        if self._until_close and self._status:
            self._finish()  # the close is how this body ends
            return
        self._fail(
            ServerDisconnected("server disconnected", stale=self.reused and not self._seen_bytes)
        )

    def pause_writing(self) -> None:
        if self._drain_waiter is None:
            self._drain_waiter = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- httptools callbacks --------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # informational: the final response follows
            self._headers = []
            return
        self._status = status
        self._keep_alive = self._parser.should_keep_alive()
        if not self._no_body and status not in (204, 304):
            length = any(n.lower() == b"content-length" for n, _ in self._headers)
            chunked = any(
                n.lower() == b"transfer-encoding" and b"chunked" in v.lower()
                for n, v in self._headers
            )
            self._until_close = not length and not chunked
        waiter, self._head_waiter = self._head_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, self._headers))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._status:  # not the end of an informational response
            self._finish()

    # --- the cycle ----------------------------------------------------------------
    async def request(
        self,
        head: bytes,
        body: bytes | AsyncIterator[bytes] | None,
        *,
        no_body: bool,
        head_timeout: float | None,
    ) -> Head:
        """Send a request; return its response's status and headers."""
        if self.closed or self.transport is None:
            raise ServerDisconnected("server disconnected", stale=self.reused)
        self._parser = httptools.HttpResponseParser(self)
        self._headers, self._status, self._complete, self._seen_bytes = [], 0, False, False
        self._no_body, self._until_close, self._error = no_body, False, None
        waiter: asyncio.Future[Head] = asyncio.get_running_loop().create_future()
        self._head_waiter = waiter
        if body is None or isinstance(body, bytes):
            self.transport.write(head + body if body else head)
        else:
            self.transport.write(head)
            async for chunk in body:
                if self.transport.is_closing():
                    break  # the server hung up: the response (or the failure) says why
                self.transport.write(chunk)
                if self._drain_waiter is not None:
                    await self._drain_waiter
        if head_timeout is None:
            return await waiter
        async with asyncio.timeout(head_timeout):
            return await waiter

    async def chunks(self, read_timeout: float | None) -> AsyncIterator[bytes]:
        """The response body as it arrives; `read_timeout` bounds each wait."""
        while True:
            if self._body:
                chunk = self._body.popleft()
                self._buffered -= len(chunk)
                if self._paused and self._buffered < LOW_WATER and self.transport is not None:
                    self._paused = False
                    self.transport.resume_reading()
                yield chunk
            elif self._error is not None:
                raise self._error
            elif self._complete:
                return
            else:
                self._body_waiter = asyncio.get_running_loop().create_future()
                if read_timeout is None:
                    await self._body_waiter
                else:
                    async with asyncio.timeout(read_timeout):
                        await self._body_waiter

    @property
    def reusable(self) -> bool:
        """The response was read to its end and the server keeps the connection."""
        return self._complete and self._keep_alive and not self.closed and self._error is None

    def reset(self) -> None:
        """Between two cycles: forget the last response."""
        self._parser = None
        self._body.clear()
        self._buffered = 0
        self.reused = True
        self.idle_since = time.monotonic()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # --- internals --------------------------------------------------------------
    def _finish(self) -> None:
        self._complete = True
        self._wake()

    def _wake(self) -> None:
        waiter, self._body_waiter = self._body_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        self._error = error
        waiter, self._head_waiter = self._head_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self._wake()
        self.close()
