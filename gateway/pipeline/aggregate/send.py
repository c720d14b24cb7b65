"""The `send` stage: the rendered request to the upstream, and its body back.

Every attempt goes through `call_guarded` (gateway/upstream/attempts.py): the
circuit breaker decides whether it may go out; GET calls are retried on
connection errors, attempt timeouts and 502/503/504, within the retry budget.
The upstream's `timeout` covers each attempt whole (connect, headers and the
body), so a dribbling upstream cannot stretch it; the route deadline, in the
fan-out, bounds all of it. The body is read up to `max_response_size` (after
decompression) and counted against MEMORY_BUDGET (decode.py).
"""

from __future__ import annotations

import asyncio
import time

import httpx

from gateway.envelope import MirrorCall
from gateway.observe.trace import CallTarget
from gateway.pipeline.aggregate.decode import OverBudget, TooLarge, Undecodable, read_body
from gateway.pipeline.aggregate.exchange import Exchange, Next, Stage
from gateway.pipeline.aggregate.outcome import Outcome
from gateway.policies.mirror.shadow import KEEP
from gateway.routes.model import Backend, Upstream
from gateway.types import Failure
from gateway.upstream.attempts import Traced, UpstreamGuard, call_guarded, is_retryable_status
from gateway.upstream.requests import (
    build_request,
    classify_transport_error,
    reserve_traceparent,
    retarget,
    send,
    set_traceparent,
)
from gateway.upstream.targets import TargetState

__all__ = ["retryable", "send_stage", "upstream_failed"]


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


def _describe(outcome: Outcome) -> tuple[int | None, bool]:
    """For the attempt's span: the answer's status, and whether it failed."""
    return outcome.status, outcome.failure is not None


def send_stage(
    backend: Backend,
    upstream: Upstream,
    client: httpx.AsyncClient,
    guard: UpstreamGuard,
    *,
    max_size: int,
) -> Stage:
    # Built for the first target; an attempt elsewhere retargets.
    first, method = guard.balancer.states[0].origin, backend.method
    idempotent = method == "GET"
    traced = Traced(CallTarget(backend.name, upstream.host, upstream.port, method), _describe)

    async def stage(exchange: Exchange, next: Next) -> None:
        outcome = exchange.outcome
        origin = first
        request = build_request(
            method,
            origin.url(exchange.path, exchange.query),
            origin.host_header,
            exchange.headers,
            exchange.content,
            # No transport timeouts: the attempt's own deadline covers
            # connecting, the headers and the whole body.
        )

        envelope = exchange.fanout.envelope
        trace = envelope.trace
        slot = None if trace is None else reserve_traceparent(request)
        steer = guard.steer(envelope.client, envelope.identity_key, exchange.fanout.headers)

        async def attempt(traceparent: bytes | None, target: TargetState) -> Outcome:
            nonlocal origin
            outcome.attempts += 1
            if target.origin is not origin:
                origin = target.origin
                retarget(request, origin)
            if traceparent is not None and slot is not None:
                set_traceparent(request, slot, traceparent)
            await _attempt(client, request, exchange, max_size, deadline=upstream.timeout)
            return outcome

        started = time.perf_counter()
        tap = envelope.mirror
        try:
            if (
                await call_guarded(
                    guard,
                    attempt,
                    _judge,
                    idempotent=idempotent,
                    trace=trace,
                    traced=traced,
                    steer=steer,
                )
                is None
            ):
                outcome.failure, outcome.detail = Failure.CIRCUIT_OPEN, ""
        finally:
            outcome.duration = time.perf_counter() - started
        if tap is not None:  # mirror: this call, as it was made, and what it got
            primary = None
            if tap.compare:
                payload = exchange.payload
                kept = bytes(payload) if payload is not None and len(payload) <= KEEP else None
                primary = (outcome.status, kept)
            body = (
                exchange.content
                if exchange.content is None or len(exchange.content) <= tap.max_body
                else None
            )
            tap.calls.append(
                MirrorCall(
                    method,
                    exchange.path[len(upstream.base_path) :],
                    exchange.query,
                    exchange.headers,
                    body,
                    primary,
                )
            )
        if outcome.ok:
            await next(exchange)

    return stage


async def _attempt(
    client: httpx.AsyncClient,
    request: httpx.Request,
    exchange: Exchange,
    max_size: int,
    *,
    deadline: float,
) -> None:
    """One attempt: the status, and the body as bytes (or why not)."""
    outcome = exchange.outcome
    outcome.failure, outcome.detail, outcome.status, exchange.payload = None, "", None, None
    try:
        async with asyncio.timeout(deadline) as attempt:
            response = await send(client, request)
            try:
                outcome.status = response.status_code
                if not 200 <= response.status_code < 300:
                    outcome.failure = Failure.REDIRECT if response.is_redirect else Failure.STATUS
                    outcome.detail = f"answered {response.status_code}"
                    return
                exchange.payload = await read_body(
                    response.headers.raw,
                    response.stream,  # type: ignore[arg-type]  # an async byte stream
                    max_size,
                    exchange.fanout.hold,
                    attempt,
                )
            finally:
                await response.aclose()
    except TimeoutError:
        outcome.failure = Failure.TIMEOUT
    except httpx.TransportError as exc:
        outcome.failure = classify_transport_error(exc)
    except TooLarge:
        outcome.failure = Failure.TOO_LARGE
    except OverBudget:
        outcome.failure = Failure.MEMORY
    except Undecodable as exc:
        outcome.failure, outcome.detail = Failure.INVALID, f"answered a body that {exc}"
