"""HTTP/2 to upstreams, for `grpc:` routes: h2c (`http://`, prior knowledge)
or h2 over TLS (`https://`, ALPN `h2`, with SPEC 3.17's `tls:`), on h2.

httpx's HTTP/2 (httpcore) drops response trailers, and gRPC's status lives
in them, so gRPC calls have a client of their own. One `H2Client` per
upstream (kept across reloads, as the HTTP/1.1 clients are) keeps a few
connections per target and opens a stream per call on the least busy one
with room under the server's MAX_CONCURRENT_STREAMS; another connection is
opened only when every one is full, up to the upstream's `max_connections`.

A call (`H2Call`) sends its request head and body within the peer's
flow-control windows, then hands out the answer: its head, its DATA as it
arrives (the window credit goes back only as the caller takes each piece,
so a slow client slows the upstream rather than filling the gateway), and
its trailers. A response header list larger than `max_header_size` fails
the connection. `aclose()` on an unfinished call resets its stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from gateway.h2encode import FlatEncoder
from gateway.routes.model import Upstream
from gateway.upstream.tls import TlsSource

__all__ = ["H2Call", "H2Client", "H2Failure", "upstream_client"]

logger = logging.getLogger("gateway.upstream")
_READ = 65536
_WINDOW = 1024 * 1024  # per stream: what an upstream may send ahead of the caller


class H2Failure(Exception):
    """The call got no (complete) answer. `connect`: no connection could be
    made (nothing was sent); `refused`: the server refused the stream before
    processing it (REFUSED_STREAM, or past a GOAWAY): safe to try elsewhere."""

    def __init__(self, message: str, *, connect: bool = False, refused: bool = False) -> None:
        super().__init__(message)
        self.connect = connect
        self.refused = refused


class H2Call:
    """One stream: the request sent, the answer as it comes."""

    def __init__(self, connection: _Connection, stream_id: int) -> None:
        self._connection = connection
        self.stream_id = stream_id
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.trailers: list[tuple[bytes, bytes]] = []
        self._head = asyncio.get_running_loop().create_future()
        self._pieces: asyncio.Queue[tuple[bytes, int] | H2Failure | None] = asyncio.Queue()
        self.window = asyncio.Event()
        self.ended = False  # the answer ended (trailers, or END_STREAM)
        self.failure: H2Failure | None = None
        self.sender: asyncio.Task[None] | None = None  # sends a streamed request body
        self.refusal: Exception | None = None  # why the caller gave up on it

    async def send(self, body: bytes, *, end: bool) -> None:
        """Send (more of) the request's body, within the flow-control windows."""
        await self._connection.send(self, body, end=end)

    async def finish(self) -> None:
        """End the request (its body sent in parts, the last already gone)."""
        await self._connection.send(self, b"", end=True)

    async def head(self) -> None:
        """Wait for the answer's head (`status`, `headers`)."""
        await self._head

    async def body(self) -> AsyncIterator[bytes]:
        """The answer's DATA as it arrives; trailers are in `trailers` after."""
        while True:
            piece = await self._pieces.get()
            if piece is None:
                return
            if isinstance(piece, H2Failure):
                raise piece
            data, flow = piece
            self._connection.acknowledge(self.stream_id, flow)
            yield data

    async def aclose(self) -> None:
        if self.sender is not None:
            self.sender.cancel()
        if not self.ended:
            self._connection.reset(self.stream_id)
        self._connection.forget(self.stream_id)

    def give_up(self, why: Exception) -> None:
        """The caller ends the call (`refusal` says why): the stream is reset
        and whoever waits on the answer gets H2Failure."""
        self.refusal = why
        self._connection.reset(self.stream_id)
        self.fail(H2Failure(str(why)))

    # --- from the connection ------------------------------------------------------
    def answered(self, status: int, headers: list[tuple[bytes, bytes]], *, ended: bool) -> None:
        if self._head.done():  # a second head: trailers
            self.trailers = headers
            return
        self.status, self.headers = status, headers
        self._head.set_result(None)
        if ended:  # trailers-only: the head holds the status
            self.end()

    def data(self, data: bytes, flow: int) -> None:
        self._pieces.put_nowait((data, flow))

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            self._pieces.put_nowait(None)

    def fail(self, failure: H2Failure) -> None:
        if self.ended:
            return
        self.ended = True
        self.failure = failure
        self.window.set()
        if not self._head.done():
            self._head.set_exception(failure)
            self._head.exception()  # retrieved: a caller that never waits is no error
        self._pieces.put_nowait(failure)


class _Connection:
    def __init__(self, max_header_size: int) -> None:
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(
                client_side=True,
                header_encoding=None,
                # The request's headers are the gateway's own, or a client's
                # that its server protocol validated: checking them again costs
                # a third of a call. The answers are checked.
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
            )
        )
        self.conn.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: _WINDOW,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: max_header_size,
            },
        )
        self.conn.decoder.max_header_list_size = max_header_size
        self.conn.encoder = FlatEncoder()  # type: ignore[assignment]
        self.calls: dict[int, H2Call] = {}
        self.writer: asyncio.StreamWriter | None = None
        self.usable = True
        self._flush_soon = False
        self._reader: asyncio.Task[None] | None = None

    async def open(self, host: str, port: int, context: ssl.SSLContext | None, name: str) -> None:
        reader, self.writer = await asyncio.open_connection(
            host, port, ssl=context, server_hostname=name if context else None
        )
        if context is not None:
            ssl_object = self.writer.get_extra_info("ssl_object")
            if ssl_object is None or ssl_object.selected_alpn_protocol() != "h2":
                self.writer.close()
                raise H2Failure("the upstream did not agree to HTTP/2 (ALPN h2)", connect=True)
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(_WINDOW * 16)  # the connection's window
        self._flush()
        self._reader = asyncio.create_task(self._read(reader))

    @property
    def room(self) -> int:
        limit = self.conn.remote_settings.max_concurrent_streams
        return min(limit, 1000) - len(self.calls) if self.usable else 0

    def start(self, headers: list[tuple[bytes, bytes]], *, end: bool) -> H2Call:
        stream_id = self.conn.get_next_available_stream_id()
        call = H2Call(self, stream_id)
        self.calls[stream_id] = call
        self.conn.send_headers(stream_id, headers, end_stream=end)
        self._flush()
        return call

    async def send(self, call: H2Call, body: bytes, *, end: bool) -> None:
        view = memoryview(body)
        while view:
            if call.failure is not None:
                raise call.failure
            try:
                room = min(
                    self.conn.local_flow_control_window(call.stream_id),
                    self.conn.max_outbound_frame_size,
                )
            except h2.exceptions.StreamClosedError:
                raise H2Failure(
                    "the upstream closed the stream while the request was sent"
                ) from None
            if room <= 0:
                call.window.clear()
                await call.window.wait()
                continue
            last = len(view) <= room
            self.conn.send_data(call.stream_id, view[:room].tobytes(), end_stream=end and last)
            view = view[room:]
            if last:  # the request's whole (or last) part: out with this turn's other frames
                self._flush()
                return
            self._write_out()
            if self.writer is not None:
                await self.writer.drain()
        if end and call.failure is None:
            with contextlib.suppress(h2.exceptions.StreamClosedError):
                self.conn.end_stream(call.stream_id)
            self._flush()

    def acknowledge(self, stream_id: int, flow: int) -> None:
        if flow and self.usable:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self.conn.acknowledge_received_data(flow, stream_id)
                self._flush()

    def reset(self, stream_id: int) -> None:
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
            self._flush()

    def forget(self, stream_id: int) -> None:
        self.calls.pop(stream_id, None)

    def _flush(self) -> None:
        """Write what h2 has queued once this turn of the event loop is over:
        a call's head and body (and other calls' frames) in one write."""
        if not self._flush_soon:
            self._flush_soon = True
            asyncio.get_running_loop().call_soon(self._write_out)

    def _write_out(self) -> None:
        self._flush_soon = False
        data = self.conn.data_to_send()
        if data and self.writer is not None and not self.writer.is_closing():
            self.writer.write(data)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        why = "the upstream closed the connection"
        try:
            while data := await reader.read(_READ):
                for event in self.conn.receive_data(data):
                    self._handle(event)
                self._flush()
        except h2.exceptions.ProtocolError as exc:
            why = f"the upstream broke HTTP/2: {exc}"
            self._flush()
        except (OSError, ssl.SSLError) as exc:
            why = f"the upstream connection failed: {exc}"
        except asyncio.CancelledError:
            why = "the gateway closed the connection"
        self._close(why)

    def _handle(self, event: Any) -> None:
        if isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
            if (call := self.calls.get(event.stream_id)) is not None:
                headers = list(event.headers)
                status = 0
                if isinstance(event, h2.events.ResponseReceived):
                    status = int(dict(headers).get(b":status", b"0"))
                    headers = [(n, v) for n, v in headers if not n.startswith(b":")]
                call.answered(status, headers, ended=event.stream_ended is not None)
        elif isinstance(event, h2.events.DataReceived):
            if (call := self.calls.get(event.stream_id)) is not None:
                call.data(event.data, event.flow_controlled_length)
            else:
                self.acknowledge(event.stream_id, event.flow_controlled_length)
        elif isinstance(event, h2.events.StreamEnded):
            if (call := self.calls.get(event.stream_id)) is not None:
                call.end()
        elif isinstance(event, h2.events.StreamReset):
            if (call := self.calls.pop(event.stream_id, None)) is not None:
                refused = event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
                call.fail(
                    H2Failure(
                        f"the upstream reset the stream ({event.error_code!r})", refused=refused
                    )
                )
        elif isinstance(event, h2.events.WindowUpdated):
            targets = (
                self.calls.values() if event.stream_id == 0 else [self.calls.get(event.stream_id)]
            )
            for call in targets:
                if call is not None:
                    call.window.set()
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            for call in self.calls.values():
                call.window.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.usable = False
            last = event.last_stream_id or 0
            for stream_id in [s for s in self.calls if s > last]:
                self.calls.pop(stream_id).fail(
                    H2Failure("the upstream is going away", refused=True)
                )

    def _close(self, why: str) -> None:
        self.usable = False
        calls, self.calls = list(self.calls.values()), {}
        for call in calls:
            call.fail(H2Failure(why))
        if self.writer is not None:
            self.writer.close()

    async def aclose(self) -> None:
        self.usable = False
        if self.writer is not None and not self.writer.is_closing():
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self.conn.close_connection()
                self._write_out()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


class H2Client:
    """The HTTP/2 connections of one upstream, by target."""

    def __init__(
        self,
        *,
        max_connections: int,
        max_header_size: int,
        context: Any = None,
        server_name: str | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        """`context`: None for h2c, else a callable giving the current SSL
        context (a rotated certificate is used for new connections)."""
        self.connect_timeout = connect_timeout
        self.max_connections = max_connections
        self.max_header_size = max_header_size
        self._context = context
        self._server_name = server_name
        self._pools: dict[tuple[str, int], list[_Connection]] = {}
        self._opening: dict[tuple[str, int], asyncio.Future[_Connection]] = {}

    async def call(
        self, host: str, port: int, headers: list[tuple[bytes, bytes]], *, end: bool
    ) -> H2Call:
        """Open a stream on a connection to `host:port` and send `headers`."""
        connection = await self._connection(host, port)
        try:
            return connection.start(headers, end=end)
        except h2.exceptions.ProtocolError as exc:  # the connection is closing
            connection.usable = False
            raise H2Failure(
                f"the upstream connection cannot take a stream: {exc}", refused=True
            ) from exc

    async def _connection(self, host: str, port: int) -> _Connection:
        key = (host, port)
        pool = self._pools.setdefault(key, [])
        pool[:] = [c for c in pool if c.usable or c.calls]
        usable = [c for c in pool if c.usable and c.room > 0]
        if usable:
            return max(usable, key=lambda c: c.room)
        if len(pool) >= self.max_connections and pool:
            raise H2Failure(f"every connection to {host}:{port} is full", refused=True)
        opening = self._opening.get(key)
        if opening is None:
            opening = asyncio.ensure_future(self._open(host, port))
            self._opening[key] = opening
            opening.add_done_callback(lambda _: self._opening.pop(key, None))
        return await asyncio.shield(opening)

    async def _open(self, host: str, port: int) -> _Connection:
        connection = _Connection(self.max_header_size)
        context = self._context() if self._context is not None else None
        try:
            async with asyncio.timeout(self.connect_timeout):
                await connection.open(host, port, context, self._server_name or host)
        except H2Failure:
            raise
        except TimeoutError:
            raise H2Failure(f"cannot connect to {host}:{port}: timed out", connect=True) from None
        except (OSError, ssl.SSLError) as exc:
            raise H2Failure(f"cannot connect to {host}:{port}: {exc}", connect=True) from exc
        self._pools.setdefault((host, port), []).append(connection)
        return connection

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            for connection in pool:
                await connection.aclose()


def upstream_client(upstream: Upstream) -> H2Client:
    """The HTTP/2 client of a gRPC upstream. Over TLS its contexts come from a
    `TlsSource` of its own (rotated certificates picked up for new
    connections), with ALPN `h2`: the HTTP/1.1 client's context must not
    offer it."""
    context: Callable[[], ssl.SSLContext] | None = None
    if upstream.scheme == "https":
        source = TlsSource(upstream.tls) if upstream.tls is not None else None
        default: list[ssl.SSLContext] = []

        def current() -> ssl.SSLContext:
            if source is not None:
                made = source.context()
            else:
                if not default:
                    default.append(ssl.create_default_context())
                made = default[0]
            made.set_alpn_protocols(["h2"])
            return made

        context = current
    return H2Client(
        max_connections=upstream.max_connections,
        max_header_size=upstream.max_header_size,
        context=context,
        server_name=upstream.tls.server_name if upstream.tls is not None else None,
        connect_timeout=upstream.timeout,
    )
