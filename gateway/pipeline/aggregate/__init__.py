"""Aggregate routes (`backends`): every backend called at once (a dependent one
as soon as those it reads have answered), each body shaped, all merged into
one JSON answer (SPEC 3.1).

`build_aggregate` is the whole composition, read top to bottom. Each backend
is a chain of stages (exchange.py), built here once when the routes load:

    render   what it is sent: path, query, headers, body (render.py)
    hooks    the route's `backend` hooks, when it has any (hooked.py)
    send     the guarded attempts: breaker, retries, budget; the body read (send.py)
    decode   parsed, or validated and kept as bytes when nothing reads it (decode.py)
    shape    target, allow, deny, rename; left out when the body goes as it came (shape.py)

and the route's handler fans the chains out and merges (handler.py), behind
the cache when the route has one (cached.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.pipeline.aggregate.cached import CachedAggregate
from gateway.pipeline.aggregate.decode import decode_stage
from gateway.pipeline.aggregate.exchange import Next, chain
from gateway.pipeline.aggregate.handler import AggregateHandler, BackendPlan
from gateway.pipeline.aggregate.hooked import backend_hook_stage
from gateway.pipeline.aggregate.render import render
from gateway.pipeline.aggregate.send import send_stage
from gateway.pipeline.aggregate.shape import compile_shape, shape_stage
from gateway.routes.model import Aggregate, Backend, Hook, Route
from gateway.upstream.render import upstream_headers

if TYPE_CHECKING:
    from gateway.pipeline import Handler, Parts

__all__ = ["build_aggregate"]

# Owned by the gateway for aggregate calls, whatever a forward_headers list says.
_NOT_FORWARDED = frozenset({b"accept-encoding", b"traceparent", b"tracestate"})


def build_aggregate(route: Route, aggregate: Aggregate, parts: Parts) -> Handler:
    backends = aggregate.backends
    hooks = parts.table.hooks + route.hooks  # global first; request hooks run in the view
    keys = {b.key: i for i, b in enumerate(backends) if b.key}
    read_by_others = frozenset().union(*(b.depends_on for b in backends))
    plans = []
    for index, backend in enumerate(backends):
        reads = tuple((keys[k], k) for k in sorted(backend.depends_on))
        plans.append(
            BackendPlan(
                index=index,
                name=backend.name,
                required=backend.required,
                deps=tuple(i for i, _ in reads),
                call=build_backend(
                    backend,
                    parts,
                    reads=reads,
                    top_level=backend.key is None and len(backends) > 1,
                    # response hooks read and change the merged body: real objects
                    splice_ok=backend.key not in read_by_others and not hooks.response,
                    hooks=hooks.backend,
                ),
            )
        )
    handler = AggregateHandler(route, aggregate, plans, parts.runtime.memory, hooks)
    if aggregate.cache is None:
        return handler
    varying = frozenset().union(*(forwarded(b, parts) for b in backends))
    return CachedAggregate(handler, aggregate.cache.ttl, parts.runtime.coalescer, varying)


def build_backend(
    backend: Backend,
    parts: Parts,
    *,
    reads: tuple[tuple[int, str], ...],
    top_level: bool,
    splice_ok: bool,
    hooks: tuple[Hook, ...] = (),
) -> Next:
    """One backend's chain of stages, in the order they run."""
    upstream = parts.table.upstreams[backend.upstream]
    shape = compile_shape(backend)
    return chain(
        render(
            backend,
            upstream,
            reads=reads,
            forward=forwarded(backend, parts),
            static_headers=upstream_headers(upstream),
        ),
        backend_hook_stage(hooks, backend),
        send_stage(
            backend,
            upstream,
            parts.clients[backend.upstream],
            parts.guards[backend.upstream],
            max_size=parts.table.settings.max_response_size,
        ),
        decode_stage(splice=shape.is_identity and not top_level and splice_ok),
        shape_stage(shape, must_be_object=top_level),
    )


def forwarded(backend: Backend, parts: Parts) -> frozenset[bytes]:
    """The client headers this backend receives: the allow-lists, minus what
    the gateway owns (identity headers, Accept-Encoding)."""
    names = (*parts.table.settings.forward_headers, *backend.forward_headers)
    return frozenset(h.encode() for h in names) - _NOT_FORWARDED - parts.identity_headers
