"""HTTP/2 on the client port (HTTP2=on), a uvicorn protocol built on h2.

uvicorn 0.54's own HTTP/2 (`--http zttp --http2`) cannot be told its
SETTINGS: it advertises 128 concurrent streams and a 64 KiB header list
whatever the gateway is configured with, and gives no hook to refuse a
stream or to budget control frames. h2 (python-hyper, sans-I/O) lets the
gateway choose every SETTINGS value and see every frame, so this protocol
keeps SPEC 3.10's limits on HTTP/2 as edge/protocol.py does on HTTP/1.1:

- MAX_CONCURRENT_STREAMS 100: a stream past it is refused (RST_STREAM
  REFUSED_STREAM, its headers decoded only to keep HPACK in step), never
  served; h2 itself would end the whole connection;
- MAX_HEADER_LIST_SIZE is MAX_REQUEST_HEADERS: a larger list is answered
  `431` on its stream (up to a hard cap, past which the HPACK decoder ends
  the connection: an HPACK bomb costs at most that cap); a `:path` longer
  than MAX_REQUEST_LINE is `414`;
- a connection must complete a request within CLIENT_HEADER_TIMEOUT of
  opening, and between requests it may idle for uvicorn's keep-alive
  timeout; frames alone (PING, SETTINGS, a header block never finished) do
  not keep it open;
- resets, refused streams, PING, SETTINGS, PRIORITY, empty DATA and unknown
  frames spend budgets (gateway/edge/h2limits.py): past one, GOAWAY
  ENHANCE_YOUR_CALM. CONTINUATION floods end at h2's 64-frame backlog.
  Either way the address's new HTTP/2 connections are refused for a while
  (h2limits.PENALTY);
- the requests of a read start START_BATCH per turn of the event loop, so
  100 streams opened at once take turns with other clients, and a stream
  reset before its turn never starts;
- request bodies are flow-controlled: credit goes back to the client as the
  application reads (gateway/edge/h2stream.py), and reads from the socket
  stop while the client does not read what the gateway writes (PING acks
  included), so a client that floods without reading holds nothing.

Every frame the client gets wrong ends its connection with GOAWAY and one
log line, never a traceback; so does a flow-control window held shut past
CLIENT_SEND_TIMEOUT (without the penalty: a slow reader is not an attack).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar
from urllib.parse import unquote

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from h2.connection import _decode_headers
from h2.stream import StreamClosedBy
from hyperframe.frame import HeadersFrame, RstStreamFrame
from uvicorn.protocols.utils import get_local_addr, get_remote_addr, is_ssl

from gateway.edge.address import Networks, is_trusted_proxy, make_request_id
from gateway.edge.h2limits import PENALTY, FrameBudgets
from gateway.edge.h2stream import H2Stream
from gateway.edge.protocol import LINGER_SECONDS
from gateway.errors import problem_body
from gateway.h2encode import FlatEncoder
from gateway.types import Scope

__all__ = ["MAX_STREAMS", "H2Protocol"]

logger = logging.getLogger("gateway")
MAX_STREAMS = 100
START_BATCH = 8  # requests a connection starts per turn of the event loop
READ_PIECE = 4096  # bytes of a read handed to h2 at once (data_received)
DECODED_HEADERS_CAP = 1024 * 1024  # past this, the HPACK decoder ends the connection
_CALM = h2.errors.ErrorCodes.ENHANCE_YOUR_CALM


class _Refused(h2.events.Event):
    """A stream opened past MAX_CONCURRENT_STREAMS, refused."""

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id


class _Connection(h2.connection.H2Connection):
    """h2's server connection, refusing a stream past the limit instead of
    ending the connection (h2 raises TooManyStreamsError)."""

    def _receive_headers_frame(self, frame: HeadersFrame) -> tuple[list[Any], list[Any]]:
        stream_id = frame.stream_id
        if (
            stream_id not in self.streams
            and stream_id % 2 == 1
            and stream_id > self.highest_inbound_stream_id
            and self.open_inbound_streams >= self.local_settings.max_concurrent_streams
        ):
            _decode_headers(self.decoder, frame.data)  # the HPACK table stays in step
            self.highest_inbound_stream_id = stream_id
            self._closed_streams[stream_id] = StreamClosedBy.SEND_RST_STREAM
            refusal = RstStreamFrame(stream_id)
            refusal.error_code = h2.errors.ErrorCodes.REFUSED_STREAM
            return [refusal], [_Refused(stream_id)]
        return super()._receive_headers_frame(frame)


class H2Protocol(asyncio.Protocol):
    # (CLIENT_HEADER_TIMEOUT, MAX_REQUEST_LINE, MAX_REQUEST_HEADERS): set at boot
    limits: ClassVar[tuple[float, int, int]] = (10.0, 8192, 65536)
    trusted: ClassVar[Networks] = ()  # TRUSTED_PROXIES: never penalised (_penalize)

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.config = config
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.server_state = server_state
        self.app_state = app_state
        self.root_path: str = config.root_path
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.conn = _Connection(
            h2.config.H2Configuration(
                client_side=False,
                header_encoding=None,
                # Answers are the gateway's: h2stream.py lower-cases names and
                # drops connection and pseudo headers; values were checked
                # where they came from. Requests are checked.
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
            )
        )
        self.conn.encoder = FlatEncoder()  # type: ignore[assignment]
        self.streams: dict[int, H2Stream] = {}
        self.budgets = FrameBudgets()
        self.write_paused = False
        self._writable = asyncio.Event()
        self._writable.set()
        self.closing = False
        self._lost = False
        self._flush_soon = False
        self._starting: list[H2Stream] = []  # requests not started yet, in order
        self._start_soon = False
        self._idle: asyncio.TimerHandle | None = None
        self.server: Any = None
        self.client: Any = None
        self.scheme = "http"

    # --- asyncio.Protocol -------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server_state.connections.add(self)
        self.server = get_local_addr(self.transport)
        self.client = get_remote_addr(self.transport)
        self.scheme = "https" if is_ssl(self.transport) else "http"
        header_timeout, _, max_headers = self.limits
        codes = h2.settings.SettingCodes
        self.conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                codes.MAX_CONCURRENT_STREAMS: MAX_STREAMS,
                codes.MAX_HEADER_LIST_SIZE: max_headers,
                codes.ENABLE_PUSH: 0,
            },
        )
        self.conn.decoder.max_header_list_size = max(4 * max_headers, DECODED_HEADERS_CAP)
        self.conn.initiate_connection()
        self.flush()
        self._arm(header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self.server_state.connections.discard(self)
        self._disarm()
        self._abandon_all()
        self.streams.clear()
        self.write_paused = False
        self._writable.set()

    def eof_received(self) -> bool | None:
        return None  # close

    def pause_writing(self) -> None:
        """The client does not read what is written: read nothing more from it
        either (each frame it sends may queue an answer)."""
        self.write_paused = True
        self._writable.clear()
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._writable.set()
        if not self.transport.is_closing():
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        """h2 is fed READ_PIECE bytes at a time, and the budgets judged after
        each: one 64 KiB read can hold a thousand streams opened and reset,
        and h2 would decode every one before the first was counted."""
        view = memoryview(data)
        for start in range(0, len(view), READ_PIECE):
            try:
                events = self.conn.receive_data(view[start : start + READ_PIECE])
            except h2.exceptions.ProtocolError as exc:
                self._fail(f"invalid HTTP/2 from the client: {exc}")
                return
            for event in events:
                self._handle(event)
                if self.transport.is_closing():
                    return
        if self._starting and not self._start_soon:
            self._start_soon = True
            self.loop.call_soon(self._start_some)
        self.flush()

    def _start_some(self) -> None:
        """Start the requests that arrived, START_BATCH per turn of the event
        loop: a connection that opens 100 streams at once takes turns with
        every other client instead of holding the loop for all of them, and a
        stream reset before its turn (rapid reset sends both at once) costs
        nothing."""
        self._start_soon = False
        batch, self._starting = self._starting[:START_BATCH], self._starting[START_BATCH:]
        for stream in batch:
            if not stream.disconnected:
                task = self.loop.create_task(self._run(stream))
                self.server_state.tasks.add(task)
                task.add_done_callback(self.server_state.tasks.discard)
        if self._starting and not self.transport.is_closing():
            self._start_soon = True
            self.loop.call_soon(self._start_some)

    # --- uvicorn's server ------------------------------------------------------
    def shutdown(self) -> None:
        """Graceful: GOAWAY now, close once the streams in flight have ended."""
        if self.closing:
            return
        self._goaway()
        if not self.streams:
            self._close()

    # --- for the streams ------------------------------------------------------
    def flush(self) -> None:
        """Write what h2 has queued, once this turn of the event loop is over:
        an answer's head, body and trailers, and the other streams' frames
        of the same turn, go out in one write (one system call)."""
        if not self._flush_soon:
            self._flush_soon = True
            self.loop.call_soon(self.write_out)

    def write_out(self) -> None:
        """Write what h2 has queued, now (before a close)."""
        self._flush_soon = False
        data = self.conn.data_to_send()
        if data and not self.transport.is_closing():
            self.transport.write(data)

    async def drain(self) -> None:
        await self._writable.wait()

    def acknowledge(self, stream_id: int, size: int) -> None:
        try:
            self.conn.acknowledge_received_data(size, stream_id)
        except h2.exceptions.ProtocolError:  # the connection is ending
            return
        self.flush()

    def reset(self, stream_id: int, code: int = h2.errors.ErrorCodes.INTERNAL_ERROR) -> None:
        try:
            self.conn.reset_stream(stream_id, code)
        except h2.exceptions.ProtocolError:  # already closed
            return
        self.flush()

    def cut(self, why: str) -> None:
        """End the connection now: GOAWAY, then close without waiting for
        what the client will not read (`_close`)."""
        logger.info("HTTP/2 client %s cut off: %s", self._peer(), why)
        self._goaway(_CALM)
        self._end()

    def finished(self, stream: H2Stream) -> None:
        """A stream's answer ended (sent in full, reset or abandoned)."""
        if self.streams.pop(stream.stream_id, None) is None:
            return
        self.server_state.total_requests += 1
        if stream.unacked:  # body the application never read: the connection's credit back
            self.acknowledge(stream.stream_id, stream.unacked)
            stream.unacked = 0
        if stream.more_body and stream.complete:
            # Answered before the whole body came (a 413): what still comes is
            # read and dropped for LINGER_SECONDS, so a client that sends the
            # whole body before it reads (most do) still gets its answer; then
            # RST_STREAM NO_ERROR asks it to stop (RFC 9113 8.1).
            self.loop.call_later(LINGER_SECONDS, self._stop_body, stream.stream_id)
        if self.transport.is_closing() or self.streams:
            return
        if self.closing:
            self.write_out()
            self._close()
        else:
            self._arm(self.config.timeout_keep_alive)

    def _stop_body(self, stream_id: int) -> None:
        h2_stream = self.conn.streams.get(stream_id)
        if h2_stream is not None and h2_stream.open and not self.transport.is_closing():
            self.reset(stream_id, h2.errors.ErrorCodes.NO_ERROR)

    # --- frames ---------------------------------------------------------------
    def _handle(self, event: Any) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self._request(event.stream_id, event.headers, ended=event.stream_ended is not None)
        elif isinstance(event, h2.events.DataReceived):
            stream = self.streams.get(event.stream_id)
            if stream is None or stream.complete or stream.disconnected:
                self.acknowledge(event.stream_id, event.flow_controlled_length)
            else:
                stream.received(
                    event.data, event.flow_controlled_length, ended=event.stream_ended is not None
                )
            if not event.data and event.stream_ended is None:
                self._spend("other", "empty DATA frames")
        elif isinstance(event, h2.events.StreamEnded):
            if (stream := self.streams.get(event.stream_id)) is not None:
                stream.ended()
        elif isinstance(event, h2.events.WindowUpdated):
            self._credit(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            stream = self.streams.pop(event.stream_id, None)
            if stream is not None and not stream.complete:
                stream.gone()
                self._spend("reset", "streams reset before their answer")
                if not self.streams and not self.closing:
                    self._arm(self.config.timeout_keep_alive)
        elif isinstance(event, _Refused):
            self._spend("refused", f"streams past the limit of {MAX_STREAMS}")
        elif isinstance(event, h2.events.PingReceived):
            self._spend("ping", "PING frames")
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self._spend("settings", "SETTINGS frames")
            self._credit(0)  # INITIAL_WINDOW_SIZE may have grown
        elif isinstance(event, (h2.events.PriorityUpdated, h2.events.UnknownFrameReceived)):
            self._spend("other", "PRIORITY or unknown frames")
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.closing = True
            if not self.streams:
                self.write_out()
                self._close()

    def _spend(self, kind: str, what: str) -> None:
        if not self.budgets.spend(kind) and not self.transport.is_closing():
            penalty = self._penalize()
            logger.warning(
                "HTTP/2 client %s sent too many %s: GOAWAY, and its new HTTP/2"
                " connections refused for %g s",
                self._peer(),
                what,
                penalty,
            )
            self._goaway(_CALM)
            self._end()

    def _goaway(self, code: int = h2.errors.ErrorCodes.NO_ERROR) -> None:
        """GOAWAY now: no new stream from here on."""
        self.closing = True
        self.conn.close_connection(code, last_stream_id=self.conn.highest_inbound_stream_id)
        self.write_out()

    def _end(self) -> None:
        """The connection is over now: its requests abandoned, it closed."""
        self._abandon_all()
        self._close()

    def _close(self) -> None:
        """Close once what is written (a GOAWAY) has gone; at once (a reset)
        when the client reads nothing, or LINGER_SECONDS later if it still
        has not read it: a close would wait for it forever."""
        if self.write_paused:
            self.transport.abort()
            return
        self.transport.close()
        self.loop.call_later(LINGER_SECONDS, self._abort_if_open)

    def _abort_if_open(self) -> None:
        if not self._lost:
            self.transport.abort()

    def _penalize(self) -> float:
        """The address's new HTTP/2 connections refused for a while (seconds),
        unless it is a trusted proxy: an ingress relays many clients' streams
        on its connections, and refusing it would refuse all of them."""
        if not self.client or is_trusted_proxy(str(self.client[0]), self.trusted):
            return 0.0
        return PENALTY.add(str(self.client[0]))

    def _abandon_all(self) -> None:
        """The connection is over: each stream's request is cancelled,
        START_BATCH per turn of the event loop (cancelling 100 requests at
        once holds the loop as long as starting them would)."""
        streams = list(self.streams.values())
        for stream in self._starting:  # not started yet: never will be
            stream.gone()
        self._starting.clear()

        def some(rest: list[H2Stream]) -> None:
            for stream in rest[:START_BATCH]:
                stream.gone()
            if len(rest) > START_BATCH:
                self.loop.call_soon(some, rest[START_BATCH:])

        some(streams)

    def _credit(self, stream_id: int) -> None:
        if stream_id == 0:
            for stream in self.streams.values():
                stream.window.set()
        elif (credited := self.streams.get(stream_id)) is not None:
            credited.window.set()

    def _fail(self, why: str) -> None:
        penalty = self._penalize()
        logger.info(
            "HTTP/2 client %s: %s: GOAWAY, and its new HTTP/2 connections refused for %g s",
            self._peer(),
            why,
            penalty,
        )
        self.closing = True
        self.write_out()  # h2 has queued its GOAWAY
        self._end()

    # --- requests ---------------------------------------------------------------
    def _request(self, stream_id: int, headers: list[tuple[bytes, bytes]], *, ended: bool) -> None:
        self._disarm()
        scope = self._scope(headers)
        if isinstance(scope, tuple):
            self._refuse(stream_id, *scope)
        elif self.closing:
            self.reset(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
        else:
            stream = H2Stream(self, stream_id, scope, ended=ended)
            self.streams[stream_id] = stream
            self._starting.append(stream)
        if not self.streams and not self.closing:
            self._arm(self.config.timeout_keep_alive)

    async def _run(self, stream: H2Stream) -> None:
        try:
            await self.app(stream.scope, stream.receive, stream.send)
        except Exception as exc:  # the handler answers its own errors: this is a bug
            logger.error("HTTP/2 stream %d: the application failed: %r", stream.stream_id, exc)
        finally:
            if not stream.complete and not stream.disconnected:
                stream.gone()
                self.reset(stream.stream_id)
            self.finished(stream)

    def _scope(self, headers: list[tuple[bytes, bytes]]) -> Scope | tuple[int, str]:
        _, max_line, max_headers = self.limits
        method = target = authority = b""
        fields: list[tuple[bytes, bytes]] = []
        cookies: list[bytes] = []
        size = 0
        for name, value in headers:
            size += len(name) + len(value) + 32  # RFC 9113 6.5.2's list size
            if name[:1] == b":":
                if name == b":method":
                    method = value
                elif name == b":path":
                    target = value
                elif name == b":authority":
                    authority = value
            elif name == b"cookie":
                cookies.append(value)
            elif name != b"host" or not authority:
                fields.append((name, value))
        if size > max_headers:
            return 431, f"the request headers are larger than {max_headers} bytes"
        if len(target) > max_line:
            return 414, f"the request target is longer than {max_line} bytes"
        if method == b"CONNECT" or not target.startswith(b"/"):
            return 400, "HTTP/2 requests here have a path that begins with /"
        if authority:
            fields = [(n, v) for n, v in fields if n != b"host"]
            fields.insert(0, (b"host", authority))
        if cookies:
            fields.append((b"cookie", b"; ".join(cookies)))
        raw_path, _, query = target.partition(b"?")
        try:
            path = raw_path.decode("ascii")
            verb = method.decode("ascii")
        except UnicodeDecodeError:
            return 400, "the request path is not ASCII"
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "2",
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,
            "method": verb,
            "root_path": self.root_path,
            "path": self.root_path + (unquote(path) if "%" in path else path),
            "raw_path": self.root_path.encode("ascii") + raw_path,
            "query_string": query,
            "headers": fields,
            "state": self.app_state.copy(),
            "extensions": {"http.response.trailers": {}},
        }

    def _refuse(self, stream_id: int, status: int, detail: str) -> None:
        """A problem+json answer on the stream, made below Django."""
        request_id = make_request_id(None)
        body = problem_body(status, detail, request_id=request_id)
        head = [
            (b":status", str(status).encode()),
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
        ]
        try:
            self.conn.send_headers(stream_id, head)
            self.conn.send_data(stream_id, body, end_stream=True)
        except h2.exceptions.ProtocolError:  # the window cannot take it: reset instead
            self.reset(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        if self.conn.streams.get(stream_id) is not None and self.conn.streams[stream_id].open:
            self.loop.call_later(LINGER_SECONDS, self._stop_body, stream_id)  # as finished()
        self.flush()

    # --- timers -----------------------------------------------------------------
    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._idle = self.loop.call_later(seconds, self._idle_out)

    def _disarm(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _idle_out(self) -> None:
        self._idle = None
        if not self.streams and not self.transport.is_closing():
            self._goaway()
            self._close()

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "(unknown)"
