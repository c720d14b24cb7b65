"""One upstream call of an aggregate route: httpx in, an `Outcome` out.

Foreign errors are translated here and nowhere else. The per-attempt timeout
(the upstream's `timeout`) covers connect, headers and the whole body, so a
dribbling upstream cannot stretch it; the route deadline wraps all of it in
`fanout`. Bodies are read up to `max_response_size` (after decompression, so a
small gzip bomb is caught too) and parsed with orjson.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import httpx
import orjson

from .outcome import Failure, Outcome

__all__ = ["call_upstream", "classify_transport_error"]


def classify_transport_error(exc: httpx.TransportError) -> Failure:
    """httpx (or the transport under it) failed: a timeout or a connection error.

    httpx-aiohttp's transport maps every aiohttp connection error (a reset, a
    server that hung up) to httpx.ConnectTimeout; the original exception, kept
    as the cause, tells what really happened."""
    if isinstance(exc, httpx.TimeoutException):
        cause = exc.__cause__
        if isinstance(cause, aiohttp.ClientError) and not isinstance(cause, TimeoutError):
            return Failure.CONNECT
        return Failure.TIMEOUT
    if isinstance(exc, httpx.DecodingError):
        return Failure.INVALID
    return Failure.CONNECT


async def _read_limited(response: httpx.Response, limit: int) -> bytes | None:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def call_upstream(
    client: httpx.AsyncClient,
    request: httpx.Request,
    outcome: Outcome,
    *,
    attempt_timeout: float,
    max_size: int,
) -> Outcome:
    """Send `request`, fill in `outcome` (status, parsed body or failure)."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(attempt_timeout):
            response = await client.send(request, stream=True)
            try:
                outcome.status = response.status_code
                if not 200 <= response.status_code < 300:
                    outcome.failure = Failure.REDIRECT if response.is_redirect else Failure.STATUS
                    outcome.detail = f"answered {response.status_code}"
                    return outcome
                content = await _read_limited(response, max_size)
            finally:
                await response.aclose()
    except TimeoutError:
        outcome.failure = Failure.TIMEOUT
        return outcome
    except httpx.TransportError as exc:
        outcome.failure = classify_transport_error(exc)
        return outcome
    finally:
        outcome.duration = time.perf_counter() - started
    if content is None:
        outcome.failure = Failure.TOO_LARGE
        return outcome
    try:
        outcome.raw = orjson.loads(content)
    except orjson.JSONDecodeError:
        outcome.failure = Failure.INVALID
    return outcome
