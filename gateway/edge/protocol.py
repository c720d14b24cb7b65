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

from gateway.edge.address import make_request_id
from gateway.errors import raw_problem_response

__all__ = ["LINGER_SECONDS", "MIN_BODY_RATE", "guard_protocol"]

logger = logging.getLogger("gateway")
MIN_BODY_RATE = 16 * 1024  # bytes per second, on average, after the grace period
LINGER_SECONDS = 2.0
_STATE = "_gateway_limits"


class _Limits:
    """Per connection: where the current request head stands."""

    __slots__ = ("done", "head_bytes", "refused", "scope", "timer")

    def __init__(self) -> None:
        self.scope: object = None  # uvicorn's scope of the request whose head is counted
        self.head_bytes = 0  # received since that head began (from the next read on)
        self.done = False  # that head is complete: what follows is its body
        self.refused = False
        self.timer: asyncio.TimerHandle | None = None


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


def _over(protocol: Any, state: _Limits, fed: int) -> tuple[int, str] | None:
    """After a read: is the head in progress (or just completed) too large?
    uvicorn keeps the target so far in `url` and the complete headers in
    `headers`; a header still being read is inside httptools, counted only
    as bytes received. Exact sums are taken only when the bytes received
    could pass a limit at all, so an ordinary request costs two comparisons."""
    _, max_line, max_headers = protocol._gateway_limits_config
    if state.head_bytes + fed <= max_line:
        return None
    if len(protocol.url) > max_line:
        return 414, f"the request target is longer than {max_line} bytes"
    headers = sum(len(name) + len(value) + 4 for name, value in protocol.headers)
    if max(headers, state.head_bytes - len(protocol.url)) > max_headers:
        return 431, f"the request headers are larger than {max_headers} bytes"
    return None


def _expire(protocol: Any) -> None:
    _state(protocol).timer = None
    _refuse(protocol, 408, "the request headers took too long")


def _arm(protocol: Any, state: _Limits) -> None:
    if state.timer is None:
        timeout = protocol._gateway_limits_config[0]
        state.timer = protocol.loop.call_later(timeout, _expire, protocol)


def _connection_made(self: Any, transport: asyncio.Transport) -> None:
    type(self)._gateway_originals[0](self, transport)
    _arm(self, _state(self))  # until the first request's head is complete


def _connection_lost(self: Any, exc: Exception | None) -> None:
    _disarm(_state(self))
    type(self)._gateway_originals[1](self, exc)


def _data_received(self: Any, data: bytes) -> None:
    """uvicorn 0.54's data_received, plus the head limits and deadline."""
    state = _state(self)
    if state.refused:
        return  # lingering: read and drop
    self._unset_keepalive_if_required()
    counted = state.scope is not None and state.scope is self.scope and not state.done
    if counted:
        state.head_bytes += len(data)  # all of it belongs to the head in progress
    try:
        self.parser.feed_data(data)
    except httptools.HttpParserError:
        self.logger.warning("Invalid HTTP request received.")
        self.send_400_response("Invalid HTTP request received.")
        return
    except httptools.HttpParserUpgrade:
        # The head is complete (httptools stops at it): judge it, then stop its
        # deadline, which must never fire into an upgraded connection.
        _disarm(state)
        state.done = True
        if (refusal := _over(self, state, 0 if counted else len(data))) is not None:
            _refuse(self, *refusal)
            return
        if self._should_upgrade():
            self.handle_websocket_upgrade()
        else:
            self._unsupported_upgrade_warning()
        return
    _after_read(self, state, 0 if counted else len(data))


def _after_read(self: Any, state: _Limits, fed: int) -> None:
    scope = self.scope
    if scope is None:
        return
    complete = "method" in scope  # uvicorn sets it once the head is complete
    if scope is not state.scope:  # a new request began in this read
        state.scope, state.head_bytes, state.done = scope, 0, False
        if not complete:
            _arm(self, state)  # a kept-alive request's head: from its first byte
    elif state.done:
        return  # its body: the handler's to judge
    if (refusal := _over(self, state, fed)) is not None:
        _refuse(self, *refusal)
        if complete and self.cycle is not None:
            self.cycle.disconnected = True  # never mind the request uvicorn started
    elif complete:
        state.done = True
        _disarm(state)


def guard_protocol(*, header_timeout: float, max_line: int, max_headers: int) -> bool:
    """Patch uvicorn's httptools protocol; False if it is not importable."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools missing: nothing to guard here
        return False
    HttpToolsProtocol._gateway_limits_config = (header_timeout, max_line, max_headers)  # type: ignore[attr-defined]
    if getattr(HttpToolsProtocol, "_gateway_guarded", False):
        return True
    HttpToolsProtocol._gateway_originals = (  # type: ignore[attr-defined]
        HttpToolsProtocol.connection_made,
        HttpToolsProtocol.connection_lost,
    )
    HttpToolsProtocol.connection_made = _connection_made  # type: ignore[method-assign]
    HttpToolsProtocol.connection_lost = _connection_lost  # type: ignore[method-assign]
    HttpToolsProtocol.data_received = _data_received  # type: ignore[method-assign]
    HttpToolsProtocol._gateway_guarded = True  # type: ignore[attr-defined]
    return True
