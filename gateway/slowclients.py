"""Deadlines for slow clients (slowloris): uvicorn has none for request headers.

A connection must deliver a request's complete headers within
CLIENT_HEADER_TIMEOUT of connecting (or, on a kept-alive connection, of the
request's first byte); otherwise it gets a 408 and is closed. The gateway
installs this on uvicorn's httptools protocol when it loads, however uvicorn
was started (`auto` picks httptools, a pinned dependency).

The body deadline is the handler's (gateway/handler.py): CLIENT_BODY_TIMEOUT
of grace plus the time the bytes received so far need at MIN_BODY_RATE.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

__all__ = ["MIN_BODY_RATE", "guard_header_reads"]

logger = logging.getLogger("gateway")
MIN_BODY_RATE = 16 * 1024  # bytes per second, on average, after the grace period
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\n"
    b"content-length: 30\r\nconnection: close\r\n\r\nrequest headers took too long\n"
)
_TIMER = "_gateway_header_timer"


def _arm(protocol: Any, timeout: float) -> None:
    if getattr(protocol, _TIMER, None) is None:
        setattr(protocol, _TIMER, protocol.loop.call_later(timeout, _expire, protocol))


def _disarm(protocol: Any) -> None:
    timer = getattr(protocol, _TIMER, None)
    if timer is not None:
        timer.cancel()
        setattr(protocol, _TIMER, None)


def _expire(protocol: Any) -> None:
    setattr(protocol, _TIMER, None)
    transport: asyncio.Transport | None = getattr(protocol, "transport", None)
    if transport is not None and not transport.is_closing():
        transport.write(_TIMEOUT_RESPONSE)
        transport.close()


def guard_header_reads(timeout: float) -> bool:
    """Patch uvicorn's httptools protocol; False if it is not importable."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools missing: nothing to guard here
        return False
    if getattr(HttpToolsProtocol, "_gateway_guarded", False):
        return True
    connection_made = HttpToolsProtocol.connection_made
    connection_lost = HttpToolsProtocol.connection_lost
    on_message_begin = HttpToolsProtocol.on_message_begin
    on_headers_complete = HttpToolsProtocol.on_headers_complete

    def guarded_connection_made(self: Any, transport: asyncio.Transport) -> None:
        connection_made(self, transport)
        _arm(self, timeout)

    def guarded_connection_lost(self: Any, exc: Exception | None) -> None:
        _disarm(self)
        connection_lost(self, exc)

    def guarded_on_message_begin(self: Any) -> None:
        on_message_begin(self)
        _arm(self, timeout)

    def guarded_on_headers_complete(self: Any) -> None:
        _disarm(self)
        on_headers_complete(self)

    HttpToolsProtocol.connection_made = guarded_connection_made  # type: ignore[method-assign]
    HttpToolsProtocol.connection_lost = guarded_connection_lost  # type: ignore[method-assign]
    HttpToolsProtocol.on_message_begin = guarded_on_message_begin  # type: ignore[method-assign]
    HttpToolsProtocol.on_headers_complete = guarded_on_headers_complete  # type: ignore[method-assign]
    HttpToolsProtocol._gateway_guarded = True  # type: ignore[attr-defined]
    return True
