"""Upstream HTTP clients: httpx's API over a pooled transport, one client per
upstream (so each gets its own `max_connections`), owned by the ASGI lifespan.

`create_client` is the one factory. The default transport is the gateway's own
HTTP/1.1 client (gateway/h1): under concurrency it costs a fraction of the CPU
of aiohttp's pool and several times less than httpx's own (see README,
Performance). `UPSTREAM_TRANSPORT` selects another for comparison: `aiohttp`
(gateway/transport.py), `httpx-aiohttp` (that package's transport) or `httpx`.

Whatever the transport, a client:
- never follows redirects (a 3xx goes back to the caller);
- ignores proxy environment variables (trust_env off);
- never keeps cookies: a shared client that stored one user's Set-Cookie would
  send it on the next user's upstream call. httpx's jar is replaced by one that
  stores nothing, and no transport underneath keeps cookies of its own.
"""

from __future__ import annotations

import http.cookiejar
from collections.abc import Mapping
from typing import Literal

import aiohttp
import httpx

from .config.model import Upstream
from .h1 import H1Transport
from .transport import AiohttpTransport

__all__ = [
    "TRANSPORTS",
    "TransportKind",
    "UpstreamClients",
    "create_client",
    "create_upstream_client",
]

type TransportKind = Literal["h1", "aiohttp", "httpx-aiohttp", "httpx"]
TRANSPORTS: tuple[TransportKind, ...] = ("h1", "aiohttp", "httpx-aiohttp", "httpx")
KEEPALIVE_SECONDS = 30.0


class _NoCookies(http.cookiejar.CookieJar):
    """A cookie jar that stores nothing."""

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None

    def extract_cookies(self, response: object, request: object) -> None:
        return None


def _httpx_aiohttp_transport(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    """httpx-aiohttp's transport, kept selectable so `make bench` can compare it."""
    from httpx_aiohttp import AiohttpTransport as PackagedTransport

    transport = PackagedTransport(limits=limits, trust_env=False)

    def make_session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=limits.max_connections or 100,
            keepalive_timeout=KEEPALIVE_SECONDS,
            ssl=transport.ssl_context,
        )
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type", "Accept"),
        )

    transport.client = make_session  # created lazily, inside the running loop
    return transport


def create_client(
    kind: TransportKind, *, max_connections: int, timeout: float
) -> httpx.AsyncClient:
    """The one factory for the gateway's outgoing HTTP clients."""
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=KEEPALIVE_SECONDS,
    )
    transport: httpx.AsyncBaseTransport
    if kind == "h1":
        transport = H1Transport(max_connections=max_connections, keepalive_expiry=KEEPALIVE_SECONDS)
    elif kind == "aiohttp":
        transport = AiohttpTransport(
            max_connections=max_connections, keepalive_expiry=KEEPALIVE_SECONDS
        )
    elif kind == "httpx-aiohttp":
        transport = _httpx_aiohttp_transport(limits)
    else:
        transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False, retries=0)
    client = httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        trust_env=False,
        cookies=_NoCookies(),
        timeout=httpx.Timeout(timeout),
    )
    client.headers.clear()  # requests carry exactly the headers the pipeline renders
    return client


def create_upstream_client(upstream: Upstream, kind: TransportKind) -> httpx.AsyncClient:
    return create_client(kind, max_connections=upstream.max_connections, timeout=upstream.timeout)


class UpstreamClients:
    """The clients of one routes table, by upstream name. A client is reused
    across reloads while its upstream's definition is unchanged."""

    def __init__(self, kind: TransportKind) -> None:
        self.kind = kind
        self._clients: dict[Upstream, httpx.AsyncClient] = {}

    def for_upstreams(self, upstreams: Mapping[str, Upstream]) -> dict[str, httpx.AsyncClient]:
        out = {}
        for name, upstream in upstreams.items():
            client = self._clients.get(upstream)
            if client is None:
                client = self._clients[upstream] = create_upstream_client(upstream, self.kind)
            out[name] = client
        return out

    def retire(self, keep: Mapping[str, Upstream]) -> list[httpx.AsyncClient]:
        """Forget the clients of upstreams no longer in `keep` and return them,
        for closing once the requests still using them are done."""
        wanted = set(keep.values())
        retired = [c for u, c in self._clients.items() if u not in wanted]
        self._clients = {u: c for u, c in self._clients.items() if u in wanted}
        return retired

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
