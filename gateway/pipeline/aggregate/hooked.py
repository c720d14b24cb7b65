"""Hooks on aggregate routes (SPEC 3.12): the `backend` stage, run on each
backend's call once rendered and before it is sent (once per backend, not
per retry: the render stage runs it, see render.py), and the `response`
stage, run on the merged answer.

Both only exist for routes that have such hooks: `backend_hooks` returns
None otherwise, and the handler skips `run_response_hooks` when it has
none. A response hook that never reads `body` costs no parsing: the answer
stays as it was merged (bodies nothing shapes are spliced in as they came)
until a hook reads it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson

from gateway.envelope import RouteCall
from gateway.errors import GatewayError, HookFailed, MemoryBudgetSpent
from gateway.hooks import BackendOutcome
from gateway.hooks._wire import wire_answer, wire_body, wire_call, wire_changes, wire_edits
from gateway.pipeline.aggregate.exchange import Exchange
from gateway.pipeline.aggregate.outcome import Outcome
from gateway.pipeline.hooks import StageHooks, hooked, run_bounded, run_hooks, stage_hooks
from gateway.routes.model import Backend, Hook
from gateway.stores.memory_budget import Hold, parsed_cost
from gateway.types import Failure, contract_word

__all__ = ["Step", "backend_hooks", "run_response_hooks"]

type Step = Callable[[Exchange], Awaitable[bool]]


def backend_hooks(hooks: Sequence[Hook], backend: Backend) -> Step | None:
    """The backend hooks of one backend, as a step the render stage runs on
    the rendered call (None without hooks). False: the call must not go."""
    if not hooks:
        return None
    run, name, method = stage_hooks("backend", hooks), backend.name, backend.method

    async def step(exchange: Exchange) -> bool:
        fanout = exchange.fanout
        call = fanout.call
        envelope = call.envelope
        state = hooked(envelope, call.scope, fanout.values.params)
        wired = wire_call(
            lambda: state.request, name, method, exchange.path, exchange.headers, exchange.query
        )
        try:
            # inside the fan-out, whose deadline is the route's: no second timer
            await run_bounded(run, wired, envelope)
        except GatewayError as exc:
            # The route answers this error, whatever the backend's `required`
            if fanout.hook_error is None:
                fanout.hook_error = exc
            exchange.outcome.failure = Failure.CANCELLED
            return False
        if (changes := wire_changes(wired)) is not None:
            exchange.headers, exchange.query = changes
        return True

    return step


async def run_response_hooks(
    hooks: StageHooks,
    call: RouteCall,
    hold: Hold,
    outcomes: Sequence[Outcome],
    keys: Sequence[str | None],
    body: Any,
) -> tuple[Any, int, tuple[tuple[str, str], ...]]:
    """(body, status, headers) once every response hook has run."""
    envelope = call.envelope
    state = hooked(envelope, call.scope, call.match.params)

    def read(merged: Any) -> Any:
        """The answer's Python objects, when a hook first reads it: what they
        cost is taken from the request's share of the memory budget."""
        data = orjson.dumps(merged)
        cost, _ = parsed_cost(data)
        if not hold.take_now(cost):
            raise MemoryBudgetSpent("the gateway's memory budget is spent, try again shortly")
        return orjson.loads(data)

    context = wire_answer(
        lambda: state.request,
        lambda: tuple(_public(o, k) for o, k in zip(outcomes, keys, strict=True)),
        body,
        read,
    )
    await run_hooks(hooks, context, envelope, call.deadline)
    status = context.status
    if not isinstance(status, int) or not 200 <= status <= 599:
        raise HookFailed(f"a response hook set the status to {status!r}")
    added, _ = wire_edits(context)
    return wire_body(context), status, tuple(added.items()) if added else ()


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
