"""Upstream HTTP clients: httpx's API over the gateway's own HTTP/1.1 client
(gateway/upstream/h1), one client per upstream (so each gets its own `max_connections`
and `max_header_size`), owned by the ASGI lifespan.

`create_client` is the one factory. Whatever builds the transport
(`transport_factory`; `make bench` swaps in aiohttp's and httpx's own pools to
compare them, see bench/transports/), a client:
- never follows redirects (a 3xx goes back to the caller);
- ignores proxy environment variables (trust_env off);
- never keeps cookies: a shared client that stored one user's Set-Cookie would
  send it on the next user's upstream call. httpx's jar is replaced by one that
  stores nothing, and the transport underneath keeps none of its own;
- has no timeout of its own: every call carries its own (an upstream's
  `timeout`, set per request by the pipeline; the JWKS fetch's).
"""

from __future__ import annotations

import http.cookiejar
import logging
from collections.abc import Callable, Mapping

import httpx

from gateway.routes.model import Upstream
from gateway.upstream.h1 import H1Transport
from gateway.upstream.h1.connection import DEFAULT_MAX_HEADER_SIZE
from gateway.upstream.tls import tls_source

logger = logging.getLogger("gateway.upstream")

__all__ = [
    "KEEPALIVE_SECONDS",
    "TransportFactory",
    "UpstreamClients",
    "create_client",
    "create_upstream_client",
    "transport_factory",
]

KEEPALIVE_SECONDS = 30.0

# (max_connections, keep-alive seconds, max_header_size, upstream name) -> a transport.
type TransportFactory = Callable[[int, float, int, str], httpx.AsyncBaseTransport]


def _h1(
    max_connections: int, keepalive: float, max_header_size: int, name: str
) -> httpx.AsyncBaseTransport:
    return H1Transport(
        max_connections=max_connections,
        keepalive_expiry=keepalive,
        max_header_size=max_header_size,
        name=name,
    )


transport_factory: TransportFactory = _h1


class _NoCookies(http.cookiejar.CookieJar):
    """A cookie jar that stores nothing."""

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None

    def extract_cookies(self, response: object, request: object) -> None:
        return None


def create_client(
    *,
    max_connections: int,
    max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
    name: str = "",
) -> httpx.AsyncClient:
    """The one factory for the gateway's outgoing HTTP clients."""
    return _client(transport_factory(max_connections, KEEPALIVE_SECONDS, max_header_size, name))


def _client(transport: httpx.AsyncBaseTransport) -> httpx.AsyncClient:
    client = httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        trust_env=False,
        cookies=_NoCookies(),
    )
    client.headers.clear()  # requests carry exactly the headers the pipeline renders
    return client


def create_upstream_client(upstream: Upstream) -> httpx.AsyncClient:
    if upstream.tls is None:
        return create_client(
            max_connections=upstream.max_connections,
            max_header_size=upstream.max_header_size,
            name=upstream.name,
        )
    # `tls:` is the gateway's own transport's (bench/transports compare plain HTTP).
    transport = H1Transport(
        max_connections=upstream.max_connections,
        keepalive_expiry=KEEPALIVE_SECONDS,
        max_header_size=upstream.max_header_size,
        tls=tls_source(upstream.tls),
        name=upstream.name,
    )
    return _client(transport)


class UpstreamClients:
    """The clients of one routes table, by upstream name. A client (and with it
    each target's pool: the transport keeps one per host and port) is reused
    across reloads while what it depends on is unchanged (`connection_key`:
    not the targets, their weights, the timeout or the retries)."""

    def __init__(self) -> None:
        self._clients: dict[tuple[object, ...], httpx.AsyncClient] = {}

    def for_upstreams(self, upstreams: Mapping[str, Upstream]) -> dict[str, httpx.AsyncClient]:
        out = {}
        for name, upstream in upstreams.items():
            if upstream.tls is not None and not upstream.tls.verify:  # said at every load
                logger.warning(
                    "upstream %s: tls verify is off (insecure: true): no certificate is checked",
                    name,
                    extra={"upstream": name},
                )
            key = upstream.connection_key
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = create_upstream_client(upstream)
            out[name] = client
        return out

    def retire(self, keep: Mapping[str, Upstream]) -> list[httpx.AsyncClient]:
        """Forget the clients of upstreams no longer in `keep` and return them,
        for closing once the requests still using them are done."""
        wanted = {u.connection_key for u in keep.values()}
        retired = [c for u, c in self._clients.items() if u not in wanted]
        self._clients = {u: c for u, c in self._clients.items() if u in wanted}
        return retired

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
