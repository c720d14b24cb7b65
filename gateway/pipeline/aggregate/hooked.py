"""Hooks on aggregate routes (SPEC 3.12): the `backend` stage, run in each
backend's chain after `render` and before `send` (once per backend, not per
retry), and the `response` hooks, run on the merged answer.

Both only exist for routes that have such hooks: `backend_hook_stage` returns
None otherwise (the stage is left out of the chain), and the handler skips
`run_response_hooks` when its tuple is empty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateway.envelope import Envelope
from gateway.errors import GatewayError, HookFailed
from gateway.hooks import BackendOutcome, ResponseContext
from gateway.hooks._wire import wire_call, wire_changes
from gateway.pipeline.aggregate.exchange import Exchange, Next, Stage
from gateway.pipeline.aggregate.outcome import Outcome
from gateway.pipeline.failures import Failure, contract_word
from gateway.pipeline.hooks import request_of, run_bounded, run_hooks
from gateway.routes.model import Backend, Hook

__all__ = ["backend_hook_stage", "run_response_hooks"]


def backend_hook_stage(hooks: Sequence[Hook], backend: Backend) -> Stage | None:
    if not hooks:
        return None
    hooks, name, method = tuple(hooks), backend.name, backend.method

    async def stage(exchange: Exchange, next: Next) -> None:
        shared = exchange.shared
        envelope = shared.envelope
        call = wire_call(
            request_of(envelope, shared.scope, shared.values.params),
            name,
            method,
            exchange.path,
            exchange.headers,
            exchange.query,
        )
        try:
            # inside the fan-out, whose deadline is the route's: no second timer
            await run_bounded(hooks, "backend", call, envelope)
        except GatewayError as exc:
            # The route answers this error, whatever the backend's `required`
            if shared.hook_error is None:
                shared.hook_error = exc
            exchange.outcome.failure = Failure.CANCELLED
            return
        if (changes := wire_changes(call)) is not None:
            exchange.headers, exchange.query = changes
        await next(exchange)

    return stage


async def run_response_hooks(
    hooks: Sequence[Hook],
    envelope: Envelope,
    scope: Mapping[str, Any],
    params: Mapping[str, str],
    outcomes: Sequence[Outcome],
    keys: Sequence[str | None],
    body: Any,
    route_timeout: float,
) -> tuple[Any, int, tuple[tuple[str, str], ...]]:
    """(body, status, headers) once every response hook has run."""
    context = ResponseContext(
        request=request_of(envelope, scope, params),
        outcomes=lambda: tuple(_public(o, k) for o, k in zip(outcomes, keys, strict=True)),
        body=body,
    )
    await run_hooks(hooks, "response", context, envelope, route_timeout)
    status = context.status
    if not isinstance(status, int) or not 200 <= status <= 599:
        raise HookFailed(f"a response hook set the status to {status!r}")
    return context.body, status, tuple(context.headers.items())


def _public(outcome: Outcome, key: str | None) -> BackendOutcome:
    return BackendOutcome(
        name=outcome.name,
        key=key,
        required=outcome.required,
        ok=outcome.ok,
        status=outcome.status,
        error=None if outcome.failure is None else contract_word(outcome.failure),
        duration_ms=outcome.duration * 1000,
    )
