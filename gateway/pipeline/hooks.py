"""Running Python hooks (SPEC 3.12; the public objects are gateway.hooks).

Hooks were resolved when the routes loaded (gateway/routes/hooks.py); here
they run: in list order (global ones first), each timed (access log,
`gateway_hook_duration_seconds{hook}`), under the route's deadline. A hook
that raises fails the request with a 500 naming it, its traceback logged
once with the request id; `Rejection` answers the status the hook chose.

A route without hooks never reaches this module: callers test the (empty)
tuples first, so hooks cost nothing where there are none.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from gateway.envelope import Envelope, HookLog
from gateway.errors import DeadlinePassed, HookFailed, HookRejected
from gateway.hooks import Rejection, Request, RequestContext
from gateway.hooks._wire import LazyMapping
from gateway.observe import metrics
from gateway.routes.model import Hook

__all__ = [
    "UpstreamEdits",
    "build_request",
    "remaining",
    "request_of",
    "run_bounded",
    "run_hooks",
    "run_request_hooks",
]

logger = logging.getLogger("gateway")


@dataclass(frozen=True, slots=True)
class UpstreamEdits:
    """The upstream headers request hooks set or removed, for every call."""

    set: tuple[tuple[bytes, bytes], ...]
    removed: frozenset[bytes]

    def apply(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        drop = self.removed | {name for name, _ in self.set}
        return [(n, v) for n, v in headers if n not in drop] + list(self.set)

    def key(self) -> list[tuple[str, str]]:
        """For cache keys: the answers of backends vary with these."""
        return sorted(
            [(n.decode(), v.decode("latin-1")) for n, v in self.set]
            + [(n.decode(), "") for n in self.removed]
        )


def remaining(envelope: Envelope, timeout: float) -> float:
    """What is left of the route's `timeout` once hooks have run."""
    if envelope.deadline is None:
        return timeout
    return max(0.0, envelope.deadline - asyncio.get_running_loop().time())


async def run_hooks(
    hooks: Sequence[Hook],
    stage: str,
    subject: Any,
    envelope: Envelope,
    route_timeout: float,
) -> None:
    """Run `hooks` on `subject` in order, within what is left of the route's
    deadline (which starts now, `route_timeout` long, if none was set yet)."""
    if envelope.deadline is None:
        envelope.deadline = asyncio.get_running_loop().time() + route_timeout
    deadline = asyncio.timeout_at(envelope.deadline)
    log = envelope.hooks
    try:
        async with deadline:
            await run_bounded(hooks, stage, subject, envelope)
    except TimeoutError:
        if not deadline.expired():
            raise
        name = log[-1].name if log else hooks[0].name  # the one that was running
        raise DeadlinePassed(f"the route's deadline passed in hook {name!r}") from None


async def run_bounded(hooks: Sequence[Hook], stage: str, subject: Any, envelope: Envelope) -> None:
    """The hooks in order, each timed; a failure becomes the route's error.
    No timer of its own: the caller's deadline bounds it."""
    log = envelope.hooks
    for hook in hooks:
        started = time.perf_counter()
        try:
            await hook.func(subject)
        except Rejection as exc:
            raise HookRejected(exc.status, exc.detail) from None
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


def request_of(envelope: Envelope, scope: Mapping[str, Any], params: Mapping[str, str]) -> Request:
    """What the request hooks were shown, or (none ran) the same, built now."""
    if envelope.hook_request is None:
        envelope.hook_request = build_request(envelope, scope, params)
    return envelope.hook_request


def build_request(
    envelope: Envelope,
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
        route=envelope.route_name or "",
        params=params,
        query=LazyMapping(query),
        query_string=query_string,
        headers=LazyMapping(headers),
        identity=envelope.identity,
        claims=envelope.claims,
        request_id=envelope.request_id,
    )


async def run_request_hooks(
    hooks: Sequence[Hook],
    envelope: Envelope,
    scope: Mapping[str, Any],
    params: Mapping[str, str],
    route_timeout: float,
) -> Request:
    """The request stage; what the hooks set for upstreams lands in
    `envelope.upstream_edits`. Returns the Request, for later stages."""
    request = envelope.hook_request = build_request(envelope, scope, params)
    context = RequestContext(request)
    await run_hooks(hooks, "request", context, envelope, route_timeout)
    added, removed = context.upstream_headers_set, context.upstream_headers_removed
    if added or removed:
        envelope.upstream_edits = UpstreamEdits(
            tuple((n.encode(), v.encode("latin-1")) for n, v in added.items()),
            frozenset(n.encode() for n in removed),
        )
    return request
