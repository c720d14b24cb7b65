"""Upstream transports the gateway is compared with in `make bench` (scenarios B
and C). They are not part of the product: the gateway ships only its own
HTTP/1.1 client (gateway/upstream/h1), whose framing rules (README, "Limits") these do
not all follow. `bench.transports.gateway:application` is the gateway with one
of these swapped in (BENCH_TRANSPORT=aiohttp|httpx-aiohttp|httpx).
"""

from __future__ import annotations

import aiohttp
import httpx

from bench.transports.aiohttp_pool import AiohttpTransport

__all__ = ["FACTORIES"]


def _aiohttp(
    max_connections: int, keepalive: float, max_header_size: int, name: str
) -> httpx.AsyncBaseTransport:
    return AiohttpTransport(max_connections=max_connections, keepalive_expiry=keepalive)


def _httpx_aiohttp(
    max_connections: int, keepalive: float, max_header_size: int, name: str
) -> httpx.AsyncBaseTransport:
    """The packaged aiohttp transport (httpx-aiohttp)."""
    from httpx_aiohttp import AiohttpTransport as PackagedTransport

    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=keepalive,
    )
    transport = PackagedTransport(limits=limits, trust_env=False)

    def make_session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=max_connections, keepalive_timeout=keepalive, ssl=transport.ssl_context
        )
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type", "Accept"),
        )

    transport.client = make_session  # created lazily, inside the running loop
    return transport


def _httpx(
    max_connections: int, keepalive: float, max_header_size: int, name: str
) -> httpx.AsyncBaseTransport:
    """httpx's own pool (httpcore)."""
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=keepalive,
    )
    return httpx.AsyncHTTPTransport(limits=limits, trust_env=False, retries=0)


FACTORIES = {"aiohttp": _aiohttp, "httpx-aiohttp": _httpx_aiohttp, "httpx": _httpx}
