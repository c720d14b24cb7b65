"""One HTTP/1.1 keep-alive connection to an upstream.

A connection serves one request/response cycle at a time (no pipelining).
`request()` writes the request and waits for the response headers; `chunks()`
yields the body as it arrives, pausing the socket while the reader is behind;
`release()` hands the connection back to its pool.

The upstream's framing is not trusted beyond the answer in hand. A connection
is reusable only when its answer ended exactly where the framing said and
nothing else arrived: a byte after the end of an answer (trailing garbage, a
second answer in the same read, a body on an answer that cannot have one) is
never parsed, and the connection is closed once the answer in hand has been
delivered as framed. Answers to HEAD and 204/304 answers end at their headers,
but a broken upstream may still send a body later, which would then be read as
the next answer: such connections are never reused. A `101` to a plain request
fails the call. The header block is limited to `max_header_size` bytes as it
arrives.

Pool bookkeeping goes through `state`: "active" (lent out), "idle" (in the
pool) or "gone" (closed and no longer counted). An idle connection the server
closes (or writes to) tells its pool through `on_lost`.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Literal

import httptools

__all__ = ["DEFAULT_MAX_HEADER_SIZE", "H1Connection", "ServerDisconnected", "UpstreamProtocolError"]

HIGH_WATER = 256 * 1024  # buffered body bytes before the socket is paused
LOW_WATER = 64 * 1024
DEFAULT_MAX_HEADER_SIZE = 64 * 1024

type Head = tuple[int, list[tuple[bytes, bytes]]]


class ServerDisconnected(ConnectionError):
    """The server closed the connection before the response was complete.
    `stale`: no byte of a response had come on a reused connection, so the
    server most likely closed it as idle and never saw the request."""

    def __init__(self, message: str, *, stale: bool) -> None:
        super().__init__(message)
        self.stale = stale


class UpstreamProtocolError(Exception):
    """The upstream answered something that is not a valid HTTP/1.1 answer."""


class _AfterTheEnd(Exception):
    """Raised inside a parser callback: bytes past the end of the answer."""


class H1Connection(asyncio.Protocol):
    def __init__(
        self,
        on_lost: Callable[[H1Connection], None],
        on_violation: Callable[[], None] = lambda: None,
        max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
    ) -> None:
        self._on_lost = on_lost
        self._on_violation = on_violation
        self._max_header_size = max_header_size
        self.state: Literal["active", "settling", "idle", "gone"] = "active"
        self.transport: asyncio.Transport | None = None
        self._sock: socket.socket | None = None  # for socket options (asyncio's stand-in)
        self._poll: select.poll | None = None  # made on first reuse
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
        self._head_bytes = 0  # of the header block so far
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
        sock = self._sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None or self._complete:
            self._violated()  # unsolicited bytes: never parsed, the connection closed
            return
        self._seen_bytes = True
        if not self._status:
            self._head_bytes += len(data)
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamProtocolError("the upstream switched protocols (101)"))
            return
        except httptools.HttpParserError as exc:
            if self._answered():  # the answer in hand is whole; what followed is not read
                self._violated()
            else:
                self._fail(UpstreamProtocolError(f"invalid HTTP response: {exc}"))
            return
        if not self._status and self._head_bytes > self._max_header_size:
            self._fail(UpstreamProtocolError(self._too_large()))
        elif not self._complete and self._sock is not None:
            # Part of an answer: acknowledge it now. An upstream that writes its
            # headers and body separately without TCP_NODELAY holds the body
            # back (Nagle) until this ACK, which Linux would otherwise delay by
            # up to 40 ms on every reused connection. Answers that arrive whole
            # cost nothing here.
            with contextlib.suppress(OSError):
                self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.resume_writing()
        if self.state in ("idle", "settling"):
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
    def on_message_begin(self) -> None:
        if self._complete:
            raise _AfterTheEnd  # a second answer: stop before it touches this one

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._complete:
            raise _AfterTheEnd
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        if self._complete:
            raise _AfterTheEnd
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # informational: the final response follows
            if status == 101:
                return  # the parser raises HttpParserUpgrade next: a failure
            self._headers = []
            return
        size = sum(len(n) + len(v) + 4 for n, v in self._headers)
        if size > self._max_header_size:
            self._fail(UpstreamProtocolError(self._too_large()))
            raise _AfterTheEnd
        self._status = status
        # Answers that end at their headers whatever they say (HEAD, 204, 304)
        # are where a broken upstream sends a body anyway, possibly later,
        # where it would pass for the next answer: never reuse those.
        no_body = self._no_body or status in (204, 304)
        self._keep_alive = self._parser.should_keep_alive() and not no_body
        if not no_body:
            length = any(n.lower() == b"content-length" for n, _ in self._headers)
            chunked = any(
                n.lower() == b"transfer-encoding" and b"chunked" in v.lower()
                for n, v in self._headers
            )
            self._until_close = not length and not chunked
        waiter, self._head_waiter = self._head_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, self._headers))
        if self._no_body:
            self._finish()  # a body the parser may expect next is not this answer's

    def on_body(self, body: bytes) -> None:
        if self._complete:
            raise _AfterTheEnd
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._status and not self._complete:  # not the end of an informational response
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
        self._head_bytes = 0
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
        """The answer was read to its end, its framing allows another cycle,
        and nothing arrived after it."""
        return self._complete and self._keep_alive and not self.closed and self._error is None

    def unsolicited(self) -> bool:
        """Is something waiting to be read on this idle connection (bytes, or
        the server's end of file)? Either way the upstream spoke unasked.
        One poll(2) of the socket, ~1 µs."""
        if self._sock is None:
            return False
        if self._poll is None:
            self._poll = select.poll()
            self._poll.register(self._sock.fileno(), select.POLLIN)
        return bool(self._poll.poll(0))

    def reset(self) -> None:
        """Between two cycles: forget the last response (a reader that stopped
        early may have left reading paused: the next answer must be read)."""
        self._parser = None
        self._body.clear()
        self._buffered = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        self.reused = True
        self.idle_since = time.monotonic()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def discard(self) -> None:
        """Closed for good by its pool: nothing will read what it buffered, so
        let it go now (the transport and this protocol refer to each other,
        and would keep the buffers until the collector ran). A reader still
        waiting for the body (an event stream ended on drain) is told."""
        if not self._complete and self._parser is not None:
            self._fail(ServerDisconnected("closed by the gateway", stale=False))
        self.close()
        self._body.clear()
        self._buffered = 0
        self._parser = None

    # --- internals --------------------------------------------------------------
    def _answered(self) -> bool:
        return self._complete  # (read afresh: the parser's callbacks may have set it)

    def _too_large(self) -> str:
        return f"the response's header block is larger than {self._max_header_size} bytes"

    def _finish(self) -> None:
        self._complete = True
        self._wake()

    def _violated(self) -> None:
        self._keep_alive = False
        self.close()
        self._on_violation()

    def _wake(self) -> None:
        waiter, self._body_waiter = self._body_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        waiter, self._head_waiter = self._head_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self._wake()
        self.close()
