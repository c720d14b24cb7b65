"""Upstream calls of an aggregate route: httpx in, an `Outcome` out.

Foreign errors are translated here and nowhere else. The per-attempt timeout
(the upstream's `timeout`) covers connect, headers and the whole body, so a
dribbling upstream cannot stretch it; the route deadline wraps all of it in
`fanout`. Bodies are read up to `max_response_size` (after decompression, so a
small gzip bomb is caught too) and parsed with orjson.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable

import aiohttp
import httpx
import orjson

from ..httpfast import send
from ..resilience import UpstreamGuard, call_guarded, is_retryable_status
from .outcome import Failure, Outcome

__all__ = [
    "call_backend",
    "call_upstream",
    "classify_transport_error",
    "retryable",
    "upstream_failed",
]


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
    encoded = False
    for name, value in response.headers.raw:  # one pass, no case-insensitive lookups
        lower = name.lower()
        if lower == b"content-length" and value.isdigit() and int(value) > limit:
            return None
        if lower == b"content-encoding" and value.strip().lower() != b"identity":
            encoded = True
    # Without a Content-Encoding the transport's bytes are the body: read them
    # directly, past httpx's decoder and re-chunker. Otherwise httpx decodes.
    stream: AsyncIterable[bytes] = response.aiter_bytes() if encoded else response.stream  # type: ignore[assignment]
    chunks = []
    size = 0
    async for chunk in stream:
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
    """One attempt: send `request`, fill in `outcome` (status, parsed body or failure)."""
    outcome.failure, outcome.detail, outcome.status, outcome.raw = None, "", None, None
    try:
        async with asyncio.timeout(attempt_timeout):
            response = await send(client, request)
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
    if content is None:
        outcome.failure = Failure.TOO_LARGE
        return outcome
    try:
        outcome.raw = orjson.loads(content)
    except orjson.JSONDecodeError:
        outcome.failure = Failure.INVALID
    return outcome


def upstream_failed(outcome: Outcome) -> bool:
    """Did the upstream itself fail (for the circuit breaker)? A 4xx, a bad
    body or an oversized one are answers, not unavailability."""
    if outcome.failure in (Failure.TIMEOUT, Failure.CONNECT):
        return True
    return outcome.failure is Failure.STATUS and (outcome.status or 0) >= 500


def retryable(outcome: Outcome) -> bool:
    if outcome.failure in (Failure.TIMEOUT, Failure.CONNECT):
        return True
    return outcome.failure is Failure.STATUS and is_retryable_status(outcome.status or 0)


def _judge(outcome: Outcome) -> tuple[bool, bool]:
    return upstream_failed(outcome), retryable(outcome)


async def call_backend(
    guard: UpstreamGuard,
    client: httpx.AsyncClient,
    request: httpx.Request,
    outcome: Outcome,
    *,
    attempt_timeout: float,
    max_size: int,
) -> Outcome:
    """Every attempt of one backend call, through `call_guarded`: GET and HEAD
    are retried on connection errors, attempt timeouts and 502/503/504. The
    route deadline, outside, bounds all of it."""

    async def attempt() -> Outcome:
        outcome.attempts += 1
        return await call_upstream(
            client, request, outcome, attempt_timeout=attempt_timeout, max_size=max_size
        )

    started = time.perf_counter()
    try:
        idempotent = request.method in ("GET", "HEAD")
        if await call_guarded(guard, attempt, _judge, idempotent=idempotent) is None:
            outcome.failure, outcome.detail = Failure.CIRCUIT_OPEN, ""
    finally:
        outcome.duration = time.perf_counter() - started
    return outcome
