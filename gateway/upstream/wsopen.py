"""Opening an upstream WebSocket (SPEC 3.11) with the `websockets` library's
Sans-I/O client protocol: the handshake, framing, masking, close handshake and
size limits are the library's; this module decides how it is used, and
`wsconnection.UpstreamSocket` moves the bytes.

- No proxy from the environment, no compression (a gateway next to its
  upstreams gains nothing from deflate and would pay for it per message), no
  keepalive pings of its own (the route's idle timeout closes silent pairs;
  the library still answers the upstream's pings), no User-Agent of its own
  (the client's goes on, as on proxy routes).
- `max_size` is the route's `max_message_size`: a larger message from the
  upstream closes it with 1009. At most one message waits to be read before
  the socket stops being read, and a write waits once `WRITE_LIMIT` bytes are
  queued: a slow reader on either side pauses the other.
- Foreign errors are translated here into a `Failure` (and the upstream's
  status, when it answered the handshake with one).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass

import httpx
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from gateway.routes.model import Target, Upstream, UpstreamTls
from gateway.types import Failure
from gateway.upstream.tls import handshake_reason, tls_source
from gateway.upstream.wsconnection import UpstreamSocket

logger = logging.getLogger("gateway.upstream")

__all__ = ["WRITE_LIMIT", "HandshakeFailed", "open_websocket", "websocket_url"]

WRITE_LIMIT = 64 * 1024
_SSL: ssl.SSLContext | None = None


@dataclass(frozen=True, slots=True)
class HandshakeFailed:
    failure: Failure
    status: int | None = None  # the upstream's answer, when it gave one


def websocket_url(upstream: Upstream, target: Target, raw_path: str, query: str) -> str:
    """ws:// (wss:// for an https upstream) on the target's host and port;
    `raw_path` and `query` already percent-encoded."""
    scheme = "wss" if upstream.scheme == "https" else "ws"
    host = f"[{target.host}]" if ":" in target.host else target.host
    return f"{scheme}://{host}:{target.port}{raw_path}" + (f"?{query}" if query else "")


async def open_websocket(
    url: str,
    headers: list[tuple[str, str]],
    subprotocols: list[str] | None,
    *,
    max_size: int,
    open_timeout: float,
    tls: UpstreamTls | None = None,
) -> UpstreamSocket | HandshakeFailed:
    """The upstream connection, open; or why it could not be opened
    (`open_timeout` bounds the TCP connection and the handshake)."""
    global _SSL
    try:
        uri = parse_uri(url)
    except InvalidURI:
        return HandshakeFailed(Failure.INVALID)
    protocol = ClientProtocol(
        uri,
        subprotocols=[Subprotocol(s) for s in subprotocols] if subprotocols else None,
        max_size=max_size,
    )
    request = protocol.connect()
    request.headers.update(headers)
    protocol.send_request(request)
    context, server_name = None, None
    if uri.secure and tls is not None:  # the upstream's `tls:`, as its HTTP calls use it
        source = tls_source(tls)
        context, server_name = source.context(), source.server_name(uri.host)
    elif uri.secure:
        if _SSL is None:
            _SSL = httpx.create_ssl_context(trust_env=False)
        context, server_name = _SSL, uri.host
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(open_timeout):
            _, connection = await loop.create_connection(
                lambda: UpstreamSocket(protocol, WRITE_LIMIT),
                uri.host,
                uri.port,
                ssl=context,
                server_hostname=server_name,
            )
            try:
                await connection.handshake()
            except BaseException:
                connection.transport.abort()
                raise
    except InvalidStatus as exc:
        return HandshakeFailed(Failure.STATUS, exc.response.status_code)
    except TimeoutError:
        return HandshakeFailed(Failure.TIMEOUT)
    except InvalidHandshake:
        return HandshakeFailed(Failure.INVALID)
    except ssl.SSLError as exc:
        logger.warning("TLS handshake with upstream %s failed: %s", uri.host, handshake_reason(exc))
        return HandshakeFailed(Failure.CONNECT)
    except OSError:
        return HandshakeFailed(Failure.CONNECT)
    return connection
