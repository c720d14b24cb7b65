"""Every route kind and every policy, registered once, and the one function
that composes each route's stack from them.

A policy is one module with a `POLICY` (gateway/stack.py says what it
holds: its keys in the routes file, its stage, its OpenAPI and dashboard
parts); adding one is that module plus one line in POLICIES, at the place in
the order where its stage runs. A route kind is one module with a `KIND`,
added to KINDS. Everything else is generated from these lists: the routes
file's reader and JSON Schema (`VOCABULARY`, `routes_schema`), the OpenAPI
document, the dashboard's description of each route.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.pipeline import aggregate, grpc, hooks, proxy, refusals, static, wsroute
from gateway.policies import compress, cors, ip, mirror, plans, ratelimit, validate
from gateway.policies.auth import stage as auth
from gateway.routes import load_route_table as _load
from gateway.routes import parse_route_table as _parse_text
from gateway.routes import parse_routes_file as _parse_file
from gateway.routes.model import Route, RouteTable
from gateway.routes.openapi import Description
from gateway.routes.openapi import openapi_document as _openapi
from gateway.routes.schema import routes_schema as _schema
from gateway.routes.vocabulary import Vocabulary
from gateway.stack import BuildContext, Kind, Panel, Policy, RouteHandler
from gateway.types import compose

__all__ = [
    "AROUND_KIND",
    "KINDS",
    "PANELS",
    "POLICIES",
    "VOCABULARY",
    "build_route_handler",
    "kind_of",
    "load_route_table",
    "openapi_document",
    "parse_route_table",
    "parse_routes_file",
    "route_summary",
    "routes_schema",
]

# The route kinds: the innermost handler of each route.
KINDS: tuple[Kind, ...] = (aggregate.KIND, proxy.KIND, wsroute.KIND, static.KIND, grpc.KIND)

# The stages before a route's kind, in the order they run (each route has
# those it uses). HTTP requests and WebSocket handshakes run the same ones.
POLICIES: tuple[Policy, ...] = (
    cors.POLICY,  # preflights answered; CORS headers on every answer; a handshake's Origin
    ip.POLICY,  # allow and deny lists of client addresses: 403
    auth.POLICY,  # auth and scopes: 401, 403
    plans.POLICY,  # the consumer's plan: 403; its rate limit: 429
    ratelimit.POLICY,  # one token per request: 429
    plans.QUOTA_POLICY,  # the consumer's quota: 429
    refusals.POLICY,  # what the edge refused while reading the request: 400, 408, 413
    validate.POLICY,  # the request against its schemas: 400, 415
    hooks.POLICY,  # request hooks
)

# The stages around a route's kind, outermost first: they see its answer.
AROUND_KIND: tuple[Policy, ...] = (
    compress.POLICY,  # zstd, br, gzip by Accept-Encoding; streams chunk by chunk
    validate.RESPONSE_POLICY,  # 2xx JSON answers against their schema: counted, or 502
    mirror.POLICY,  # the kind's calls repeated against another upstream, after the answer
)

# What the policies show operators: admin listener path -> panel.
PANELS: dict[str, Panel] = {
    panel.path: panel for policy in (*POLICIES, *AROUND_KIND) for panel in policy.panels
}

VOCABULARY = Vocabulary(
    kinds=tuple(kind.reader for kind in KINDS),
    options=tuple(p.option for p in (*POLICIES, *AROUND_KIND) if p.option is not None),
)


def kind_of(route: Route) -> Kind:
    return next(kind for kind in KINDS if kind.name == route.kind_name)


def build_route_handler(route: Route, context: BuildContext) -> RouteHandler:
    """A route's whole stack, composed once when the routes load, outermost
    first. A stage a route does not use is not in it. For each kind:

        aggregate  cors -> ip -> auth -> plan -> rate_limit -> quota -> refusals
                   -> validate -> request hooks -> compress -> validate.response
                   -> [cache] -> fan-out, each backend: render -> backend hooks
                   -> send -> decode -> shape; merge -> response hooks
        proxy      cors -> ... -> request hooks -> compress -> validate.response
                   -> guarded send -> the answer relayed
        websocket  cors (the Origin) -> ... -> request hooks (compress and
                   response checks pass it by) -> guarded upstream handshake
                   -> accept -> relay
        static     cors -> ... -> request hooks -> compress -> validate.response
                   -> the answer the routes file wrote
        grpc       [refusals as gRPC statuses] -> cors -> ... -> request hooks
                   -> guarded HTTP/2 call -> the answer relayed, trailers last
    """
    kind = kind_of(route)
    inner = kind.build(route, context)
    inner = compose(inner, *(policy.stage(route, context) for policy in AROUND_KIND))
    handler = compose(inner, *(policy.stage(route, context) for policy in POLICIES))
    return handler if kind.answer_errors is None else kind.answer_errors(handler)


# --- the routes file, bound to the registered vocabulary ---------------------------
def load_route_table(path: str | Path) -> RouteTable:
    """Read and parse the routes file at `path` (gateway/routes)."""
    return _load(path, VOCABULARY)


def parse_route_table(text: str, source: str = "routes.yaml") -> RouteTable:
    return _parse_text(text, VOCABULARY, source)


def parse_routes_file(data: bytes, name: str) -> RouteTable:
    return _parse_file(data, name, VOCABULARY)


def routes_schema() -> dict[str, Any]:
    """The routes file's JSON Schema (`manage.py routes_schema`)."""
    return _schema(VOCABULARY)


# --- what the OpenAPI document and the dashboard say of a route --------------------
@dataclass(frozen=True, slots=True)
class _Describer:
    applies: Callable[[Route], bool]
    write: Callable[[Route, Description], None]

    def describes(self, route: Route) -> bool:
        return self.applies(route)

    def describe(self, route: Route, description: Description) -> None:
        self.write(route, description)


def _is_kind(kind: Kind) -> Callable[[Route], bool]:
    return lambda route: route.kind_name == kind.name


def _uses(policy: Policy) -> Callable[[Route], bool]:
    option = policy.option
    # An option without route keys (plans: top-level) concerns every route.
    return lambda route: option is None or not option.keys or option.of(route) is not None


def openapi_document(table: RouteTable, title: str = "Gateway") -> dict[str, Any]:
    """The routed API as OpenAPI 3.1 (gateway/routes/openapi.py)."""
    describers = [
        *(_Describer(_is_kind(kind), kind.describe) for kind in KINDS),
        *(
            _Describer(_uses(policy), policy.describe)
            for policy in (*POLICIES, *AROUND_KIND)
            if policy.describe is not None
        ),
    ]
    return _openapi(
        table,
        describers,
        listed_only=lambda route: not kind_of(route).operations,
        document_parts=[
            policy.describe_document
            for policy in (*POLICIES, *AROUND_KIND)
            if policy.describe_document is not None
        ],
        title=title,
    )


def route_summary(route: Route) -> list[str]:
    """What the route's policies do, one line each (the dashboard)."""
    lines = (policy.summary(route) for policy in (*POLICIES, *AROUND_KIND) if policy.summary)
    return [line for line in lines if line is not None]
