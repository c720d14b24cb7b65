"""Upstream calls of an aggregate route: httpx in, an `Outcome` out.

Foreign errors are translated here and nowhere else. The per-attempt timeout
(the upstream's `timeout`) covers connect, headers and the whole body, so a
dribbling upstream cannot stretch it; the route deadline wraps all of it in
`fanout`. Bodies are read up to `max_response_size` (after decompression, so a
small gzip bomb is caught too) and parsed with orjson, all of it counted
against MEMORY_BUDGET (gateway/budget.py).
"""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson

from gateway.pipeline.aggregate.budget import Hold, parsed_cost
from gateway.pipeline.aggregate.decode import (
    VALIDATION_COST,
    OverBudget,
    TooLarge,
    Undecodable,
    is_json,
    read_body,
)
from gateway.pipeline.aggregate.outcome import Failure, Outcome
from gateway.upstream.attempts import UpstreamGuard, call_guarded, is_retryable_status
from gateway.upstream.requests import send

__all__ = [
    "call_backend",
    "call_upstream",
    "classify_transport_error",
    "retryable",
    "upstream_failed",
]


def classify_transport_error(exc: httpx.TransportError) -> Failure:
    """httpx (or the transport under it) failed: a timeout or a connection error."""
    if isinstance(exc, httpx.TimeoutException):
        return Failure.TIMEOUT
    if isinstance(exc, httpx.DecodingError):
        return Failure.INVALID
    return Failure.CONNECT


async def call_upstream(
    client: httpx.AsyncClient,
    request: httpx.Request,
    outcome: Outcome,
    *,
    attempt_timeout: float,
    max_size: int,
    hold: Hold,
    splice: bool = False,
) -> Outcome:
    """One attempt: send `request`, fill in `outcome` (status, parsed body or
    failure). With `splice`, the body is only validated as JSON and kept as
    its bytes (an `orjson.Fragment`), for a backend nothing reads or shapes."""
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
                content = await read_body(
                    response.headers.raw,
                    response.stream,  # type: ignore[arg-type]  # an async byte stream
                    max_size,
                    hold,
                )
            finally:
                await response.aclose()
    except TimeoutError:
        outcome.failure = Failure.TIMEOUT
        return outcome
    except httpx.TransportError as exc:
        outcome.failure = classify_transport_error(exc)
        return outcome
    except TooLarge:
        outcome.failure = Failure.TOO_LARGE
        return outcome
    except OverBudget:
        outcome.failure = Failure.MEMORY
        return outcome
    except Undecodable as exc:
        outcome.failure, outcome.detail = Failure.INVALID, f"answered a body that {exc}"
        return outcome
    _parse(content, outcome, hold, splice)
    return outcome


def _parse(content: bytes | bytearray, outcome: Outcome, hold: Hold, splice: bool) -> None:
    """Parse (or, spliced, only validate) under the memory budget: what it will
    cost is held before it is spent; then the buffer (parsed) or the
    validator's tape (spliced) is given back."""
    cost, containers = (len(content) * VALIDATION_COST, 0) if splice else parsed_cost(content)
    if not hold.take(cost):
        hold.give(len(content))
        outcome.failure = Failure.MEMORY
        return
    outcome.size = len(content)
    if splice:
        valid = is_json(content)
        hold.give(cost)
        if not valid:
            hold.give(len(content))
            outcome.failure = Failure.INVALID
            return
        if not isinstance(content, bytes):  # a Fragment takes bytes: one copy
            if not hold.take(len(content)):
                hold.give(len(content))
                outcome.failure = Failure.MEMORY
                return
            content = bytes(content)
            hold.give(len(content))
        outcome.raw = orjson.Fragment(content)
        outcome.held = len(content)
        return
    try:
        parsed = orjson.loads(content)
    except orjson.JSONDecodeError:
        hold.give(cost + len(content))
        outcome.failure = Failure.INVALID
        return
    hold.give(len(content))
    outcome.raw = parsed
    outcome.held = cost
    outcome.containers = containers


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
    hold: Hold,
    splice: bool = False,
) -> Outcome:
    """Every attempt of one backend call, through `call_guarded`: GET and HEAD
    are retried on connection errors, attempt timeouts and 502/503/504. The
    route deadline, outside, bounds all of it."""

    async def attempt() -> Outcome:
        outcome.attempts += 1
        return await call_upstream(
            client,
            request,
            outcome,
            attempt_timeout=attempt_timeout,
            max_size=max_size,
            hold=hold,
            splice=splice,
        )

    started = time.perf_counter()
    try:
        idempotent = request.method in ("GET", "HEAD")
        if await call_guarded(guard, attempt, _judge, idempotent=idempotent) is None:
            outcome.failure, outcome.detail = Failure.CIRCUIT_OPEN, ""
    finally:
        outcome.duration = time.perf_counter() - started
    return outcome
