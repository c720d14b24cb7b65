"""A small HTTP/1.1 client for upstream calls, as an httpx transport.

Why: under httpx's API the gateway's CPU per upstream call was mostly client
glue (aiohttp's ClientSession machinery cost ~3x what the request itself
does). This client does only what a gateway needs: keep-alive connections
pooled per origin, the request written in one go, responses parsed by
httptools (llhttp, the parser Node.js uses; uvicorn already depends on it),
bodies streamed with flow control both ways, timeouts, and one retry of an
idempotent request on a kept-alive connection the server had just closed.
No redirects, no cookies, no decompression (httpx decodes), no proxies,
no HTTP/2.

    connection.py  one keep-alive connection: a request/response cycle at a time
    pool.py        connections per origin: limits, waiting, idle expiry, DNS cache
    transport.py   H1Transport, the httpx.AsyncBaseTransport over the pools
"""

from gateway.upstream.h1.transport import H1Transport

__all__ = ["H1Transport"]
