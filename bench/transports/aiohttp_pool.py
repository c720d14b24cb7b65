"""An httpx transport over aiohttp's connection pool.

httpx keeps the API (and respx keeps working, with `respx.mock(using="httpx")`);
aiohttp's pool does the I/O, which under concurrency is several times faster
than httpx's own (see README, Performance). Compared with `httpx-aiohttp`'s
transport, which `UPSTREAM_TRANSPORT=httpx-aiohttp` still selects, this one:

- sends the URL byte for byte as the pipeline rendered it (`encoded=True`);
  given a plain string, yarl re-quotes it (`%2F` in a query becomes `/`);
- maps aiohttp's errors to the right httpx ones: a reset or a server that hung
  up is a network error, not a `ConnectTimeout`;
- streams response bodies as data arrives (`iter_any`), never decompresses them
  (httpx does, for those who ask), and never keeps cookies.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import aiohttp
import httpx
from yarl import URL

__all__ = ["AiohttpTransport"]


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "read timed out") from exc
        except aiohttp.ClientPayloadError as exc:
            raise httpx.RemoteProtocolError(str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(str(exc)) from exc

    async def aclose(self) -> None:
        response = self._response
        if response.content.at_eof():
            response.release()  # the connection goes back to the pool
        else:
            response.close()  # unread body: the connection cannot be reused


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        *,
        max_connections: int,
        keepalive_expiry: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._max_connections = max_connections
        self._keepalive = keepalive_expiry
        self._ssl = ssl_context or httpx.create_ssl_context(trust_env=False)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=0,
            keepalive_timeout=self._keepalive,
            ssl=self._ssl,
            ttl_dns_cache=10,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            # Only the headers the pipeline set: no default User-Agent, and no
            # Accept-Encoding the client did not ask for (bodies pass raw).
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type", "Accept"),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None),
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        limits = request.extensions.get("timeout") or {}
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=limits.get("pool"),  # waiting for a pooled connection, connecting included
            sock_connect=limits.get("connect"),
            sock_read=limits.get("read"),
        )
        data: bytes | AsyncIterator[bytes] | None
        try:
            data = request.content or None  # built from bytes: already in memory
        except httpx.RequestNotRead:
            data = aiter(request.stream)  # type: ignore[arg-type]  # a streamed body
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        try:
            response = await session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=headers,
                data=data,
                allow_redirects=False,
                compress=None,
                timeout=timeout,
                ssl=self._ssl,
            )
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "connect timed out", request=request) from exc
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.NetworkError(str(exc) or type(exc).__name__, request=request) from exc
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_ResponseStream(response),
            request=request,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode(),
            },
        )

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
