"""H1Transport: an httpx transport over per-origin connection pools."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import httpx

from gateway.upstream.h1.connection import (
    DEFAULT_MAX_HEADER_SIZE,
    H1Connection,
    ServerDisconnected,
    UpstreamProtocolError,
)
from gateway.upstream.h1.pool import Pool, PoolTimeout
from gateway.upstream.tls import TlsSource

__all__ = ["H1Transport"]

_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS"})


def _headers(raw: list[tuple[bytes, bytes]]) -> httpx.Headers:
    """httpx.Headers keeping the names as sent, found case-insensitively."""
    headers = httpx.Headers.__new__(httpx.Headers)
    headers._list = [(name, name.lower(), value) for name, value in raw]
    headers._encoding = None
    return headers


def _head(request: httpx.Request) -> bytes:
    """The request line and headers, as they go on the wire."""
    return b"".join(
        [
            request.method.encode(),
            b" ",
            request.url.raw_path,
            b" HTTP/1.1\r\n",
            *(b"%s: %s\r\n" % (name, value) for name, value in request.headers.raw),
            b"\r\n",
        ]
    )


class _Body(httpx.AsyncByteStream):
    def __init__(self, pool: Pool, conn: H1Connection, timeout: float | None) -> None:
        self._pool, self._conn, self._timeout = pool, conn, timeout
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._conn.chunks(self._timeout):
                yield chunk
        except TimeoutError as exc:
            raise httpx.ReadTimeout("timed out reading the response body") from exc
        except ServerDisconnected as exc:
            raise httpx.RemoteProtocolError(str(exc)) from exc
        except UpstreamProtocolError as exc:
            raise httpx.RemoteProtocolError(str(exc)) from exc

    async def aclose(self) -> None:
        if not self._released:
            self._released = True
            self._pool.release(self._conn)


class H1Transport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        *,
        max_connections: int,
        keepalive_expiry: float,
        max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
        ssl_context: ssl.SSLContext | None = None,
        tls: TlsSource | None = None,
        name: str = "",
    ) -> None:
        self.name = name  # the upstream's, for metrics and logs
        self._max = max_connections
        self._max_header_size = max_header_size
        self._keepalive = keepalive_expiry
        self._ssl = ssl_context
        self._tls = tls  # an upstream's `tls:`: its current context, re-read on rotation
        self._pools: dict[tuple[bytes, str, int], Pool] = {}

    def _pool(self, url: httpx.URL) -> Pool:
        scheme = url.raw_scheme
        port = url.port or (443 if scheme == b"https" else 80)
        key = (scheme, url.host, port)
        pool = self._pools.get(key)
        if pool is None:
            context: ssl.SSLContext | TlsSource | None = None
            if scheme == b"https":
                context = self._tls or self._ssl or httpx.create_ssl_context(trust_env=False)
            elif scheme != b"http":
                raise httpx.UnsupportedProtocol(f"unsupported scheme {url.scheme!r}")
            pool = self._pools[key] = Pool(
                url.host,
                port,
                max_connections=self._max,
                keepalive=self._keepalive,
                ssl_context=context,
                max_header_size=self._max_header_size,
                name=self.name,
            )
        return pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout") or {}
        read_timeout = timeouts.get("read")
        method = request.method.encode()
        head = _head(request)
        body: bytes | AsyncIterator[bytes] | None
        try:
            body = request.content or None
        except httpx.RequestNotRead:
            body = aiter(request.stream)  # type: ignore[arg-type]
        # A kept-alive connection the server had closed never saw the request:
        # safe to send once more on a fresh one, if sending twice is.
        retry_stale = method in _IDEMPOTENT and not isinstance(body, AsyncIterator)
        pool = self._pool(request.url)
        for attempt in (1, 2):
            conn = await self._acquire(pool, request, timeouts)
            try:
                status, headers = await conn.request(
                    head, body, no_body=method == b"HEAD", head_timeout=read_timeout
                )
            except ServerDisconnected as exc:
                pool.release(conn)
                if exc.stale and attempt == 1 and retry_stale:
                    continue
                raise httpx.RemoteProtocolError(str(exc), request=request) from exc
            except TimeoutError as exc:
                pool.release(conn)
                raise httpx.ReadTimeout(
                    "timed out waiting for the response", request=request
                ) from exc
            except UpstreamProtocolError as exc:
                pool.release(conn)
                raise httpx.RemoteProtocolError(str(exc), request=request) from exc
            except BaseException:
                pool.release(conn)
                raise
            # "body" (the gateway's own key): the silence allowed between body
            # chunks, when it differs from the wait for the headers.
            return httpx.Response(
                status,
                headers=_headers(headers),
                stream=_Body(pool, conn, timeouts.get("body", read_timeout)),
                request=request,
                extensions={"http_version": b"HTTP/1.1"},
            )
        raise AssertionError("unreachable")

    @staticmethod
    async def _acquire(
        pool: Pool, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> H1Connection:
        try:
            return await pool.acquire(
                connect_timeout=timeouts.get("connect"), pool_timeout=timeouts.get("pool")
            )
        except PoolTimeout as exc:
            raise httpx.PoolTimeout(str(exc), request=request) from exc
        except TimeoutError as exc:
            raise httpx.ConnectTimeout("timed out connecting", request=request) from exc
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
        await asyncio.sleep(0)  # let the transports close
