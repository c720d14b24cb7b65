"""Opening an upstream WebSocket (SPEC 3.11), with the `websockets` library's
asyncio client: the handshake, framing, masking, UTF-8 checks, close handshake
and size limits are the library's; this module only decides how it is used.

- No proxy from the environment, no compression (a gateway next to its
  upstreams gains nothing from deflate and would pay for it per message), no
  keepalive pings of its own (the route's idle timeout closes silent pairs;
  the library still answers the upstream's pings), no User-Agent of its own
  (the client's goes on, as on proxy routes).
- `max_size` is the route's `max_message_size`: a larger message from the
  upstream closes it with 1009. At most one message waits in the library's
  buffer before it stops reading (`max_queue=1`), and a write waits once
  `WRITE_LIMIT` bytes are queued: a slow reader on either side pauses the other.
- Foreign errors are translated here into a `Failure` (and the upstream's
  status, when it answered the handshake with one).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI
from websockets.typing import Subprotocol

from gateway.pipeline.failures import Failure
from gateway.routes.model import Upstream

__all__ = ["WRITE_LIMIT", "HandshakeFailed", "open_websocket", "websocket_url"]

WRITE_LIMIT = 64 * 1024
_SSL: ssl.SSLContext | None = None


@dataclass(frozen=True, slots=True)
class HandshakeFailed:
    failure: Failure
    status: int | None = None  # the upstream's answer, when it gave one


def websocket_url(upstream: Upstream, raw_path: str, query: str) -> str:
    """ws:// (wss:// for an https upstream) on the upstream's host and port;
    `raw_path` and `query` already percent-encoded."""
    scheme = "wss" if upstream.scheme == "https" else "ws"
    host = f"[{upstream.host}]" if ":" in upstream.host else upstream.host
    return f"{scheme}://{host}:{upstream.port}{raw_path}" + (f"?{query}" if query else "")


async def open_websocket(
    url: str,
    headers: list[tuple[str, str]],
    subprotocols: list[str] | None,
    *,
    max_size: int,
    open_timeout: float,
) -> ClientConnection | HandshakeFailed:
    """The upstream connection, open; or why it could not be opened
    (`open_timeout` bounds the TCP connection and the handshake)."""
    global _SSL
    options: dict[str, Any] = {}
    if url.startswith("wss:"):
        if _SSL is None:
            _SSL = httpx.create_ssl_context(trust_env=False)
        options["ssl"] = _SSL
    try:
        return await connect(
            url,
            additional_headers=headers,
            subprotocols=[Subprotocol(s) for s in subprotocols] if subprotocols else None,
            compression=None,
            user_agent_header=None,
            proxy=None,
            open_timeout=open_timeout,
            ping_interval=None,
            close_timeout=open_timeout,
            max_size=max_size,
            max_queue=1,
            write_limit=WRITE_LIMIT,
            **options,
        )
    except InvalidStatus as exc:
        return HandshakeFailed(Failure.STATUS, exc.response.status_code)
    except TimeoutError:
        return HandshakeFailed(Failure.TIMEOUT)
    except (InvalidHandshake, InvalidURI):
        return HandshakeFailed(Failure.INVALID)
    except OSError:
        return HandshakeFailed(Failure.CONNECT)
