"""Aggregate routes (`backends`): every backend called at once (a dependent one
as soon as those it reads have answered), each body shaped, all merged into
one JSON answer (SPEC 3.1).

`build_aggregate` is the whole composition, read top to bottom. Each backend
is a chain of stages (exchange.py), built here once when the routes load:

    render   what it is sent: path, query, headers, body (render.py), then the
             route's `backend` hooks on it, when it has any (hooked.py)
    send     the guarded attempts: breaker, retries, budget; the body read (send.py)
    decode   parsed, or validated and kept as bytes when nothing reads it (decode.py)
    shape    target, allow, deny, rename; left out when the body goes as it came (shape.py)

and the route's handler fans the chains out, merges, runs the `response`
hooks (handler.py), behind the cache when the route has one (cached.py).
`KIND` registers the kind (gateway/registry.py).
"""

from __future__ import annotations

from gateway.pipeline.aggregate.cached import CachedAggregate
from gateway.pipeline.aggregate.decode import decode_stage
from gateway.pipeline.aggregate.exchange import Next, chain
from gateway.pipeline.aggregate.handler import AggregateHandler, BackendPlan
from gateway.pipeline.aggregate.hooked import backend_hooks
from gateway.pipeline.aggregate.render import render
from gateway.pipeline.aggregate.send import send_stage
from gateway.pipeline.aggregate.shape import compile_shape, shape_stage
from gateway.routes.aggregate import AGGREGATE
from gateway.routes.model import Aggregate, Backend, Hook, Route
from gateway.routes.openapi import PROBLEM, Description
from gateway.stack import BuildContext, Kind, RouteHandler
from gateway.upstream.render import upstream_headers

__all__ = ["KIND", "build_aggregate"]

# Owned by the gateway for aggregate calls, whatever a forward_headers list says.
_NOT_FORWARDED = frozenset({b"accept-encoding", b"traceparent", b"tracestate"})


def build_aggregate(route: Route, context: BuildContext) -> RouteHandler:
    aggregate = route.kind
    assert isinstance(aggregate, Aggregate)
    backends = aggregate.backends
    hooks = context.table.hooks + route.hooks  # global first; request hooks are a route stage
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
                    context,
                    reads=reads,
                    top_level=backend.key is None and len(backends) > 1,
                    splice_ok=backend.key not in read_by_others,
                    hooks=hooks.backend,
                ),
            )
        )
    handler = AggregateHandler(route, aggregate, plans, context.runtime.memory, hooks)
    if aggregate.cache is None:
        return handler
    varying = frozenset().union(*(forwarded(b, context) for b in backends))
    return CachedAggregate(handler, aggregate.cache.ttl, context.runtime.coalescer, varying)


def build_backend(
    backend: Backend,
    context: BuildContext,
    *,
    reads: tuple[tuple[int, str], ...],
    top_level: bool,
    splice_ok: bool,
    hooks: tuple[Hook, ...] = (),
) -> Next:
    """One backend's chain of stages, in the order they run."""
    upstream = context.table.upstreams[backend.upstream]
    shape = compile_shape(backend)
    return chain(
        render(
            backend,
            upstream,
            reads=reads,
            forward=forwarded(backend, context),
            static_headers=upstream_headers(upstream),
            then=backend_hooks(hooks, backend),  # the route's backend hooks, if any
        ),
        send_stage(
            backend,
            upstream,
            context.clients[backend.upstream],
            context.guards[backend.upstream],
            max_size=context.table.settings.max_response_size,
        ),
        decode_stage(splice=shape.is_identity and not top_level and splice_ok),
        shape_stage(shape, must_be_object=top_level),
    )


def forwarded(backend: Backend, context: BuildContext) -> frozenset[bytes]:
    """The client headers this backend receives: the allow-lists, minus what
    the gateway owns (identity headers, Accept-Encoding) or reads for the
    backend's upstream (its override header)."""
    names = (*context.table.settings.forward_headers, *backend.forward_headers)
    allowed = frozenset(h.encode() for h in names) - _NOT_FORWARDED - context.owned_headers
    return allowed - context.read_for(backend.upstream)


# --- the OpenAPI description ------------------------------------------------------
_COMPLETED = {
    "X-Gateway-Completed": {
        "schema": {"type": "string", "enum": ["true", "false"]},
        "description": "false when an optional backend was left out",
    }
}
_CACHE = {"X-Cache": {"schema": {"type": "string", "enum": ["HIT", "MISS"]}}}


def describe(route: Route, description: Description) -> None:
    aggregate = route.kind
    assert isinstance(aggregate, Aggregate)
    description.ok_headers.update(_COMPLETED)
    if aggregate.cache is not None:
        description.ok_headers.update(_CACHE)
    content: dict[str, object] = {"application/json": {"schema": _answer_schema(aggregate)}}
    if aggregate.stream:
        content["text/event-stream"] = {"schema": {"type": "string"}}
        content["application/x-ndjson"] = {"schema": {"type": "string"}}
    description.ok_content.update(content)
    description.refusal(404, "A required backend answered 404 (its other 4xx pass through too)")
    description.responses["4XX"] = {
        "description": "A required backend's own 4xx, passed through as it came",
        "content": {"application/problem+json": {"schema": PROBLEM}},
    }
    if any(b.method == "POST" for b in aggregate.backends):
        description.request_body = {
            "description": "Sent to every backend whose method is POST",
            "content": {"application/json": {"schema": {}}},
        }


def _answer_schema(aggregate: Aggregate) -> dict[str, object]:
    """What an aggregate answer holds: each key's body (the fields `allow`
    keeps, when it lists them); unkeyed bodies merged at the top level."""
    backends = aggregate.backends
    if len(backends) == 1 and backends[0].key is None:
        return _fields_schema(backends[0])
    properties: dict[str, object] = {}
    for backend in backends:
        if backend.key is None:
            fields = _fields_schema(backend).get("properties", {})
            assert isinstance(fields, dict)
            properties.update(fields)
        else:
            properties[backend.key] = _fields_schema(backend)
    return {"type": "object", "properties": properties}


def _fields_schema(backend: Backend) -> dict[str, object]:
    if not backend.allow:
        return {}
    renamed = {path[-1]: new for path, new in backend.rename if len(path) == 1}
    names = sorted({renamed.get(path[0], path[0]) for path in backend.allow})
    return {
        "description": "an object (or a list of them) with these fields",
        "properties": {name: {} for name in names},
    }


KIND = Kind(reader=AGGREGATE, build=build_aggregate, describe=describe)
