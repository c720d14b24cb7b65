"""One backend's call for one request, and how its stages are chained.

A stage is `async def stage(exchange, next)`: it does its part, may call the
rest of the chain (`await next(exchange)`) and may act on what came back, like
lura's proxy middlewares. `chain(...)` composes the stages of one backend once,
when the routes load, in the order they run; a stage that has nothing to do
for a backend is left out (None), so it costs nothing per request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from gateway.pipeline.aggregate.outcome import Outcome

if TYPE_CHECKING:
    from gateway.envelope import Envelope
    from gateway.errors import GatewayError
    from gateway.pipeline.aggregate.budget import Hold
    from gateway.upstream.render import RenderInput

__all__ = ["Exchange", "Next", "Shared", "Stage", "chain"]


class Shared:
    """What every backend call of one request reads: the client's values and
    headers, its body, the gateway's own headers, the memory budget's hold."""

    __slots__ = (
        "base_headers",
        "body",
        "content_type",
        "edits",
        "envelope",
        "headers",
        "hold",
        "hook_error",
        "scope",
        "values",
    )

    def __init__(
        self,
        *,
        values: RenderInput,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        content_type: str,
        base_headers: list[tuple[bytes, bytes]],
        hold: Hold,
        envelope: Envelope,
        scope: Mapping[str, Any],
    ) -> None:
        self.values = values
        self.headers = headers
        self.body = body
        self.content_type = content_type
        self.base_headers = base_headers
        self.hold = hold
        self.envelope = envelope  # for hooks: the request, its deadline, its log
        self.scope = scope
        self.edits = envelope.upstream_edits  # what request hooks did to upstream headers
        self.hook_error: GatewayError | None = None  # a backend hook failed: the route does


class Exchange:
    """One backend's call: the upstream request as rendered (stages may change
    it before it is sent), the bytes that came back, and the outcome. `earlier`
    holds the outcomes of the route's backends so far (a dependent backend
    reads the bodies of those it depends on)."""

    __slots__ = ("content", "earlier", "headers", "outcome", "path", "payload", "query", "shared")

    def __init__(self, shared: Shared, outcome: Outcome, earlier: Sequence[Outcome | None]) -> None:
        self.shared = shared
        self.outcome = outcome
        self.earlier = earlier
        self.path = ""  # percent-encoded, the upstream's base path included
        self.query = ""  # percent-encoded
        self.headers: list[tuple[bytes, bytes]] = []
        self.content: bytes | None = None  # the request body (POST backends)
        self.payload: bytes | bytearray | None = None  # the response body as read


type Next = Callable[[Exchange], Awaitable[None]]
type Stage = Callable[[Exchange, Next], Awaitable[None]]


async def _done(exchange: Exchange) -> None:
    return None


def chain(*stages: Stage | None) -> Next:
    """`chain(a, b, c)`: a runs first, and runs b (which runs c) when it awaits
    `next`. None entries are stages that do nothing for this backend."""
    step: Next = _done
    for stage in reversed([s for s in stages if s is not None]):
        step = _bind(stage, step)
    return step


def _bind(stage: Stage, following: Next) -> Next:
    bound: Any = partial(stage, next=following)  # type: ignore[call-arg]
    return bound  # type: ignore[no-any-return]
