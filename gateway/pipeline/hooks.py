"""Running Python hooks (SPEC 3.12; the public objects are gateway.hooks).

Hooks were resolved when the routes loaded (gateway/routes/hooks.py); here
they run, as stages: `request` hooks are a stage of the route's stack (after
auth and rate limits, before the route's kind, on every kind and on a
WebSocket handshake), `backend` hooks a stage of each backend's chain and
`response` hooks a stage of the merged answer (gateway/pipeline/aggregate).
A route without hooks of a stage has no such stage: it costs nothing there.

They run in list order (global ones first), each timed (the access log,
`gateway_hook_duration_seconds{hook}`), under the route's deadline. A hook
that raises fails the request with a 500 naming it, its traceback logged
once with the request id; `Rejection` answers the status the hook chose.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Generator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl

from gateway.envelope import Caller, Envelope, Hooked, HookLog, RouteCall, UpstreamEdits
from gateway.errors import DeadlinePassed, GatewayError, HookFailed, HookRejected
from gateway.hooks import Rejection, Request
from gateway.hooks._wire import LazyMapping, wire_edits, wire_request
from gateway.observe import metrics
from gateway.router import Match
from gateway.routes.model import Hook, Route
from gateway.stack import Answer, BuildContext, Policy, RouteHandler, RouteStage

__all__ = [
    "POLICY",
    "StageHooks",
    "hooked",
    "request_hooks_stage",
    "run_bounded",
    "run_hooks",
    "stage_hooks",
]

logger = logging.getLogger("gateway")
_NO_CLAIMS: Mapping[str, Any] = MappingProxyType({})


def hooked(envelope: Envelope, scope: Mapping[str, Any], params: Mapping[str, str]) -> Hooked:
    """The request's hook state, made by the first hook stage that runs (the
    public request it shows hooks is built when one first reads it, from
    values taken now: the envelope is not referred to, so the two never form
    a cycle the garbage collector would have to find)."""
    if envelope.hooked is None:
        found, caller, request_id = envelope.found, envelope.caller, envelope.request_id
        envelope.hooked = Hooked(lambda: _public_request(found, caller, request_id, scope, params))
    return envelope.hooked


@dataclass(frozen=True, slots=True)
class StageHooks:
    """The hooks of one stage of a route, ready to run: each with what
    records its durations (gateway_hook_duration_seconds)."""

    stage: str  # request, backend or response
    hooks: tuple[Hook, ...]
    timers: tuple[Callable[[float], None], ...]

    def __bool__(self) -> bool:
        return bool(self.hooks)


def stage_hooks(stage: str, hooks: Sequence[Hook]) -> StageHooks:
    """Made when the routes load."""
    return StageHooks(stage, tuple(hooks), tuple(metrics.hook_timer(h.name) for h in hooks))


async def run_hooks(run: StageHooks, subject: Any, envelope: Envelope, deadline: float) -> None:
    """Run a stage's hooks on `subject` in order, within the route's deadline.

    They start at once, in the request's own task: hooks that never wait
    (most: they look at headers, set some) are done before anything else
    runs and need no timer. Only hooks that wait are put under the
    deadline's timer (and go with the request if it is cancelled)."""
    done_before = len(envelope.hook_log)
    hooks = run_bounded(run, subject, envelope)
    try:
        waiting = hooks.send(None)
    except StopIteration:
        return  # done without waiting
    timer = asyncio.timeout_at(deadline)
    try:
        async with timer:
            await _Resumed(hooks, waiting)
    except TimeoutError:
        if not timer.expired():
            raise
        log = envelope.hook_log
        running = run.hooks[min(len(log) - done_before, len(run.hooks) - 1)]
        raise DeadlinePassed(f"the route's deadline passed in hook {running.name!r}") from None


class _Resumed:
    """Awaiting this goes on with a coroutine that was started by hand and
    waits on `waiting`, in the awaiting task (as a task would step it)."""

    __slots__ = ("_coroutine", "_waiting")

    def __init__(self, coroutine: Coroutine[Any, Any, None], waiting: Any) -> None:
        self._coroutine, self._waiting = coroutine, waiting

    def __await__(self) -> Generator[Any, Any, None]:
        coroutine, waiting = self._coroutine, self._waiting
        while True:
            try:
                sent = yield waiting
            except BaseException as exc:  # thrown in by the task: a cancellation
                try:
                    waiting = coroutine.throw(exc)
                except StopIteration:
                    return
                continue
            try:
                waiting = coroutine.send(sent)
            except StopIteration:
                return


async def run_bounded(run: StageHooks, subject: Any, envelope: Envelope) -> None:
    """A stage's hooks in order, each timed; a failure becomes the route's
    error. No timer of its own: the caller's deadline bounds it."""
    assert envelope.hooked is not None  # `hooked` was called by the stage
    log, stage, clock = envelope.hooked.log, run.stage, time.perf_counter
    for hook, record in zip(run.hooks, run.timers, strict=True):
        started = clock()
        try:
            await hook.func(subject)
        except Rejection as exc:
            raise HookRejected(exc.status, exc.detail) from None
        except GatewayError:  # the gateway's own refusal (the memory budget)
            raise
        except Exception:
            _log_failure(hook, envelope)
            raise HookFailed(f"hook {hook.name!r} failed") from None
        finally:
            elapsed = clock() - started
            log.append(HookLog(hook.name, stage, elapsed))
            record(elapsed)


def _log_failure(hook: Hook, envelope: Envelope) -> None:
    logger.exception(
        "hook %s failed in route %s",
        hook.name,
        envelope.route_name,
        extra={"request_id": envelope.request_id},
    )


def _public_request(
    found: object,
    caller: Caller | None,
    request_id: str,
    scope: Mapping[str, Any],
    params: Mapping[str, str],
) -> Request:
    """The public view of the request (gateway.hooks.Request)."""
    raw_headers = scope["headers"]
    query_string = scope.get("query_string", b"").decode("latin-1")

    def headers() -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in raw_headers:
            key, text = name.decode("latin-1"), value.decode("latin-1")
            out[key] = f"{out[key]}, {text}" if key in out else text
        return out

    def query() -> dict[str, str]:
        first: dict[str, str] = {}
        for name, value in parse_qsl(query_string, keep_blank_values=True):
            first.setdefault(name, value)
        return first

    # Decoded when a hook first reads them: a hook that does not costs nothing.
    return Request(
        method=scope.get("method", "GET"),
        path=scope.get("path", ""),
        route=found.route.name if isinstance(found, Match) else "",
        params=params,
        query=LazyMapping(query),
        query_string=query_string,
        headers=LazyMapping(headers),
        identity=caller.identity if caller is not None else None,
        claims=caller.claims if caller is not None else _NO_CLAIMS,
        request_id=request_id,
    )


def request_hooks_stage(route: Route, context: BuildContext) -> RouteStage | None:
    """The request hooks (global ones first): what they set for upstreams
    goes with every upstream call of the request (`Hooked.edits`)."""
    hooks = stage_hooks("request", context.table.hooks.request + route.hooks.request)
    if not hooks:
        return None

    def stage(inner: RouteHandler) -> RouteHandler:
        async def handler(call: RouteCall) -> Answer:
            state = hooked(call.envelope, call.scope, call.match.params)
            context = wire_request(lambda: state.request)
            await run_hooks(hooks, context, call.envelope, call.deadline)
            added, removed = wire_edits(context)
            if added or removed:
                state.edits = UpstreamEdits(
                    tuple((n.encode(), v.encode("latin-1")) for n, v in (added or {}).items()),
                    frozenset(n.encode() for n in removed or ()),
                )
            return await inner(call)

        return handler

    return stage


def _summary(route: Route) -> str | None:
    hooks = route.hooks
    stages = [
        f"{stage} ({len(found)})"
        for stage, found in (
            ("request", hooks.request),
            ("backend", hooks.backend),
            ("response", hooks.response),
        )
        if found
    ]
    return "hooks: " + ", ".join(stages) if stages else None


POLICY = Policy(name="hooks", stage=request_hooks_stage, summary=_summary)
