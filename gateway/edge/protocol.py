"""Limits on what a client may send before the gateway has a request at all,
installed on uvicorn's httptools protocol (uvicorn has none of them):

- the request line may hold at most MAX_REQUEST_LINE bytes of target (414),
  and the header block at most MAX_REQUEST_HEADERS bytes (431). Both are
  counted as the bytes arrive and parsing stops at the limit, so an oversized
  request costs at most the limit in memory and linear time; uvicorn would
  otherwise rebuild the URL (`self.url += piece`) and httptools each header
  value on every read, which is quadratic and stalls every other client;
- the request's headers must be complete within CLIENT_HEADER_TIMEOUT of the
  connection (or, kept alive, of the request's first byte): 408 otherwise.

Refusals are problem+json answers written straight to the socket; the
connection is then half-closed, what the client still sends is read and
dropped for LINGER_SECONDS (so it sees the answer rather than a reset), and
closed. The request body's pace is the ASGI handler's to judge (MIN_BODY_RATE).

Installed at import however uvicorn was started (`auto` picks httptools, a
pinned dependency); with `--http h11`, uvicorn's own h11 limits apply instead.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httptools

from ..context import make_request_id
from ..errors import raw_problem_response

__all__ = ["LINGER_SECONDS", "MIN_BODY_RATE", "guard_protocol"]

logger = logging.getLogger("gateway")
MIN_BODY_RATE = 16 * 1024  # bytes per second, on average, after the grace period
LINGER_SECONDS = 2.0
_STATE = "_gateway_limits"


class _Limits:
    """Per connection: where the current request head stands."""

    __slots__ = ("head_bytes", "header_bytes", "in_head", "refused", "timer", "url_bytes")

    def __init__(self) -> None:
        self.in_head = False  # between a request's first byte and its last header
        self.head_bytes = 0  # bytes received while in the head (after the first read)
        self.url_bytes = 0
        self.header_bytes = 0  # of complete headers
        self.refused = False
        self.timer: asyncio.TimerHandle | None = None

    def begin(self) -> None:
        self.in_head, self.head_bytes, self.url_bytes, self.header_bytes = True, 0, 0, 0


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing at a limit."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _state(protocol: Any) -> _Limits:
    state: _Limits | None = getattr(protocol, _STATE, None)
    if state is None:
        state = _Limits()
        setattr(protocol, _STATE, state)
    return state


def _disarm(state: _Limits) -> None:
    if state.timer is not None:
        state.timer.cancel()
        state.timer = None


def _refuse(protocol: Any, status: int, detail: str) -> None:
    """Answer and half-close; read and drop for LINGER_SECONDS; close."""
    state = _state(protocol)
    if state.refused:
        return
    state.refused = True
    _disarm(state)
    transport: asyncio.Transport | None = getattr(protocol, "transport", None)
    if transport is None or transport.is_closing():
        return
    transport.write(raw_problem_response(status, detail, request_id=make_request_id(None)))
    if transport.can_write_eof():
        transport.write_eof()
    protocol.loop.call_later(LINGER_SECONDS, transport.close)


def guard_protocol(*, header_timeout: float, max_line: int, max_headers: int) -> bool:
    """Patch uvicorn's httptools protocol; False if it is not importable."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools missing: nothing to guard here
        return False
    HttpToolsProtocol._gateway_limits_config = (header_timeout, max_line, max_headers)  # type: ignore[attr-defined]
    if getattr(HttpToolsProtocol, "_gateway_guarded", False):
        return True
    originals = {
        name: getattr(HttpToolsProtocol, name)
        for name in (
            "connection_made",
            "connection_lost",
            "on_message_begin",
            "on_url",
            "on_header",
            "on_headers_complete",
        )
    }

    def config(self: Any) -> tuple[float, int, int]:
        return self._gateway_limits_config  # type: ignore[no-any-return]

    def expire(self: Any) -> None:
        _state(self).timer = None
        _refuse(self, 408, "the request headers took too long")

    def arm(self: Any) -> None:
        state = _state(self)
        if state.timer is None:
            state.timer = self.loop.call_later(config(self)[0], expire, self)

    def connection_made(self: Any, transport: asyncio.Transport) -> None:
        originals["connection_made"](self, transport)
        arm(self)

    def connection_lost(self: Any, exc: Exception | None) -> None:
        _disarm(_state(self))
        originals["connection_lost"](self, exc)

    def data_received(self: Any, data: bytes) -> None:
        """uvicorn 0.54's data_received, plus the head limits."""
        state = _state(self)
        if state.refused:
            return  # lingering: read and drop
        self._unset_keepalive_if_required()
        if state.in_head:
            state.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            refused = exc.__context__
            if isinstance(refused, _Refused):
                _refuse(self, refused.status, refused.detail)
                return
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserError:
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if state.in_head:  # still in the head: the bytes so far must fit
            _, max_line, max_headers = config(self)
            rest = state.head_bytes - state.url_bytes
            if state.url_bytes > max_line:
                _refuse(self, 414, f"the request target is longer than {max_line} bytes")
            elif max(state.header_bytes, rest) > max_line + max_headers:
                _refuse(self, 431, f"the request headers are larger than {max_headers} bytes")

    def on_message_begin(self: Any) -> None:
        originals["on_message_begin"](self)
        _state(self).begin()
        arm(self)

    def on_url(self: Any, url: bytes) -> None:
        state = _state(self)
        state.url_bytes += len(url)
        max_line = config(self)[1]
        if state.url_bytes > max_line:
            raise _Refused(414, f"the request target is longer than {max_line} bytes")
        originals["on_url"](self, url)

    def on_header(self: Any, name: bytes, value: bytes) -> None:
        state = _state(self)
        state.header_bytes += len(name) + len(value) + 4
        max_headers = config(self)[2]
        if state.header_bytes > max_headers:
            raise _Refused(431, f"the request headers are larger than {max_headers} bytes")
        originals["on_header"](self, name, value)

    def on_headers_complete(self: Any) -> None:
        state = _state(self)
        state.in_head = False
        _disarm(state)
        originals["on_headers_complete"](self)

    for name, method in (
        ("connection_made", connection_made),
        ("connection_lost", connection_lost),
        ("data_received", data_received),
        ("on_message_begin", on_message_begin),
        ("on_url", on_url),
        ("on_header", on_header),
        ("on_headers_complete", on_headers_complete),
    ):
        setattr(HttpToolsProtocol, name, method)
    HttpToolsProtocol._gateway_guarded = True  # type: ignore[attr-defined]
    return True
