"""The `render` stage: what one backend is sent, from what the client sent
and (for a dependent backend) the bodies of the backends it reads.

Paths and queries are rendered by gateway/upstream/render.py: every value
percent-encoded, nothing that could climb above the templated prefix. Headers
are the gateway's own, the allow-listed client headers, and the upstream's
static ones; a POST backend gets the client's body and its Content-Type.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gateway.pipeline.aggregate.exchange import Exchange, Next, Stage
from gateway.routes.model import Backend, Upstream
from gateway.types import Failure
from gateway.upstream.render import MissingField, RenderInput, render_path, render_query

__all__ = ["render"]


def render(
    backend: Backend,
    upstream: Upstream,
    *,
    reads: tuple[tuple[int, str], ...],
    forward: frozenset[bytes],
    static_headers: tuple[tuple[bytes, bytes], ...],
    then: Callable[[Exchange], Awaitable[bool]] | None = None,
) -> Stage:
    """`reads`: (index, key) of each backend whose body this one's templates
    read; they have finished (the fan-out waits for them) when this runs.
    `then` runs on the rendered call before it goes on (the backend hooks:
    False stops it); it has returned by then, so its frame is not one more
    that every resumption of the call passes through."""
    base_path, posts = upstream.base_path, backend.method == "POST"

    async def stage(exchange: Exchange, next: Next) -> None:
        fanout, outcome = exchange.fanout, exchange.outcome
        values = fanout.values
        if reads:
            bodies = {}
            for index, key in reads:
                earlier = exchange.earlier[index]
                if earlier is None or not earlier.ok:
                    outcome.failure = Failure.DEPENDENCY
                    return
                bodies[key] = earlier.raw
            values = RenderInput(values.params, values.path_params, values.query, bodies)
        try:
            exchange.path = base_path + render_path(backend.path, values)
            exchange.query = render_query(backend.query, values) if backend.query else ""
        except MissingField as exc:
            outcome.failure, outcome.detail = Failure.DEPENDENCY, f"could not run: {exc}"
            return
        headers = list(fanout.base_headers)  # each attempt adds its traceparent (send.py)
        headers.extend((n, v) for n, v in fanout.headers if n in forward)
        headers.extend(static_headers)
        if fanout.edits is not None:  # request hooks set or removed some
            headers = fanout.edits.apply(headers)
        if posts:
            exchange.content = fanout.body
            if fanout.content_type:
                headers.append((b"content-type", fanout.content_type.encode("latin-1")))
        exchange.headers = headers
        if then is not None and not await then(exchange):
            return
        await next(exchange)

    return stage
