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
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from gateway.envelope import Envelope, Hooked, HookLog, RouteCall, UpstreamEdits
from gateway.errors import DeadlinePassed, GatewayError, HookFailed, HookRejected
from gateway.hooks import Rejection, Request, RequestContext
from gateway.hooks._wire import LazyMapping
from gateway.observe import metrics
from gateway.routes.model import Hook, Route
from gateway.stack import Answer, BuildContext, Policy, RouteHandler, RouteStage

__all__ = ["POLICY", "hooked", "request_hooks_stage", "run_bounded", "run_hooks"]

logger = logging.getLogger("gateway")


def hooked(envelope: Envelope, scope: Mapping[str, Any], params: Mapping[str, str]) -> Hooked:
    """The request's hook state: what its hooks are shown, built once, by the
    first hook stage that runs."""
    if envelope.hooked is None:
        envelope.hooked = Hooked(_public_request(envelope, scope, params))
    return envelope.hooked


async def run_hooks(
    hooks: Sequence[Hook], stage: str, subject: Any, envelope: Envelope, deadline: float
) -> None:
    """Run `hooks` on `subject` in order, within the route's deadline."""
    timer = asyncio.timeout_at(deadline)
    try:
        async with timer:
            await run_bounded(hooks, stage, subject, envelope)
    except TimeoutError:
        if not timer.expired():
            raise
        log = envelope.hook_log
        name = log[-1].name if log else hooks[0].name  # the one that was running
        raise DeadlinePassed(f"the route's deadline passed in hook {name!r}") from None


async def run_bounded(hooks: Sequence[Hook], stage: str, subject: Any, envelope: Envelope) -> None:
    """The hooks in order, each timed; a failure becomes the route's error.
    No timer of its own: the caller's deadline bounds it."""
    assert envelope.hooked is not None  # `hooked` was called by the stage
    log = envelope.hooked.log
    for hook in hooks:
        started = time.perf_counter()
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
            elapsed = time.perf_counter() - started
            log.append(HookLog(hook.name, stage, elapsed))
            metrics.observe_hook(hook.name, elapsed)


def _log_failure(hook: Hook, envelope: Envelope) -> None:
    logger.exception(
        "hook %s failed in route %s",
        hook.name,
        envelope.route_name,
        extra={"request_id": envelope.request_id},
    )


def _public_request(
    envelope: Envelope, scope: Mapping[str, Any], params: Mapping[str, str]
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
        route=envelope.route_name or "",
        params=params,
        query=LazyMapping(query),
        query_string=query_string,
        headers=LazyMapping(headers),
        identity=envelope.identity,
        claims=envelope.claims,
        request_id=envelope.request_id,
    )


def request_hooks_stage(route: Route, context: BuildContext) -> RouteStage | None:
    """The request hooks (global ones first): what they set for upstreams
    goes with every upstream call of the request (`Hooked.edits`)."""
    hooks = context.table.hooks.request + route.hooks.request
    if not hooks:
        return None

    def stage(inner: RouteHandler) -> RouteHandler:
        async def handler(call: RouteCall) -> Answer:
            state = hooked(call.envelope, call.scope, call.match.params)
            context = RequestContext(state.request)
            await run_hooks(hooks, "request", context, call.envelope, call.deadline)
            added, removed = context.headers_set, context.headers_removed
            if added or removed:
                state.edits = UpstreamEdits(
                    tuple((n.encode(), v.encode("latin-1")) for n, v in added.items()),
                    frozenset(n.encode() for n in removed),
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
