"""One backend's call for one request, and how its stages are chained.

A stage is `async def stage(exchange, next)`: it does its part, may call the
rest of the chain (`await next(exchange)`) and may act on what came back, like
lura's proxy middlewares. `chain(...)` composes the stages of one backend once,
when the routes load, in the order they run; a stage that has nothing to do
for a backend is left out (None), so it costs nothing per request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from gateway.pipeline.aggregate.outcome import Outcome

if TYPE_CHECKING:
    from gateway.envelope import Envelope, RouteCall
    from gateway.errors import GatewayError
    from gateway.stores.memory_budget import Hold
    from gateway.upstream.render import RenderInput

__all__ = ["Exchange", "Fanout", "Next", "Stage", "chain"]


class Fanout:
    """One request's fan-out: what every backend call of it reads (the
    client's values, headers and body, the gateway's own headers, the memory
    budget's hold, the call itself for hooks and the trace), and what a call
    reports to the rest (a backend hook's error fails the route)."""

    __slots__ = (
        "base_headers",
        "body",
        "call",
        "content_type",
        "edits",
        "headers",
        "hold",
        "hook_error",
        "values",
    )

    def __init__(
        self,
        *,
        call: RouteCall,
        values: RenderInput,
        body: bytes,
        content_type: str,
        base_headers: list[tuple[bytes, bytes]],
        hold: Hold,
    ) -> None:
        self.call = call
        self.values = values
        self.headers: list[tuple[bytes, bytes]] = call.scope["headers"]
        self.body = body
        self.content_type = content_type
        self.base_headers = base_headers
        self.hold = hold
        self.edits = call.envelope.upstream_edits  # what request hooks did to upstream headers
        self.hook_error: GatewayError | None = None  # a backend hook failed: the route does

    @property
    def envelope(self) -> Envelope:
        return self.call.envelope


class Exchange:
    """One backend's call: the upstream request as rendered (stages may change
    it before it is sent), the bytes that came back, and the outcome. `earlier`
    holds the outcomes of the route's backends so far (a dependent backend
    reads the bodies of those it depends on)."""

    __slots__ = ("content", "earlier", "fanout", "headers", "outcome", "path", "payload", "query")

    def __init__(self, fanout: Fanout, outcome: Outcome, earlier: Sequence[Outcome | None]) -> None:
        self.fanout = fanout
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
