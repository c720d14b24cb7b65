"""A `Gateway`: everything built from one routes table, at load time.

The router and each route's whole stack (gateway/registry.py composes it),
over the long-lived runtime (upstream clients, breakers, stores), and what
the edge needs to know before a route runs: the query parameters that carry
credentials (taken out of the query before anything reads it), the routes
whose stack answers CORS preflights or takes WebSocket handshakes. Nothing
here changes after it is built; a reload builds a new one beside the old and
swaps the one reference (gateway/serving.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from gateway.registry import AROUND_KIND, POLICIES, build_route_handler, kind_of
from gateway.router import BadPath, Match, NoMatch, Router, split_path
from gateway.routes.model import GatewaySettings, RouteTable
from gateway.runtime import Runtime
from gateway.stack import BuildContext, RouteHandler

__all__ = ["NO_WEBSOCKETS", "Gateway", "build_gateway"]

NO_WEBSOCKETS = 64 * 1024  # the message size uvicorn is told when no route takes WebSockets


@dataclass(frozen=True, slots=True, eq=False)
class Gateway:
    table: RouteTable
    router: Router
    handlers: Mapping[str, RouteHandler]  # by route name: its whole stack
    runtime: Runtime
    query_credentials: Mapping[str, Mapping[str, str]]  # route -> query parameter -> provider
    secret_params: frozenset[str]  # query parameters never logged
    preflights: frozenset[str]  # routes whose stack answers CORS preflights
    handshakes: frozenset[str]  # routes that take WebSocket handshakes
    websocket_max_size: int  # the largest message any WebSocket route takes

    @property
    def settings(self) -> GatewaySettings:
        return self.table.settings

    def match(self, method: str, raw_path: str) -> Match | NoMatch | BadPath:
        try:
            segments = split_path(raw_path)
        except BadPath as exc:
            return exc
        return self.router.match(method, segments)


def build_gateway(table: RouteTable, runtime: Runtime) -> Gateway:
    clients = runtime.clients.for_upstreams(table.upstreams)
    context = BuildContext(
        table=table,
        runtime=runtime,
        clients=clients,
        guards=runtime.guards_for(table.upstreams, clients),
        policies=(*POLICIES, *AROUND_KIND),
    )
    routes = table.routes
    credentials = {r.name: context.query_credentials(r) for r in routes}
    sizes = [size(r) for r in routes if (size := kind_of(r).max_message_size) is not None]
    return Gateway(
        table=table,
        router=Router(routes),
        handlers={r.name: build_route_handler(r, context) for r in routes},
        runtime=runtime,
        query_credentials=MappingProxyType({n: c for n, c in credentials.items() if c}),
        secret_params=context.secret_params(),
        preflights=frozenset(
            r.name
            for r in routes
            for p in POLICIES
            if p.answers_preflights and p.option is not None and p.option.of(r) is not None
        ),
        handshakes=frozenset(r.name for r in routes if kind_of(r).handshakes),
        websocket_max_size=max(sizes, default=NO_WEBSOCKETS),
    )
