"""A `Gateway`: everything built from one routes table, at load time.

The router, each route's handler (gateway/pipeline) and policy
(gateway/policies), over the long-lived runtime (upstream clients, breakers,
stores). Nothing here changes after it is built; a reload builds a new one
beside the old and swaps the registry's one reference (gateway/registry.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.pipeline import Handler, Parts, build_route_handler
from gateway.policies.auth import build_authenticators, owned_headers, query_params
from gateway.policies.route import RoutePolicy, build_policy
from gateway.router import BadPath, Match, NoMatch, Router, split_path
from gateway.routes.model import GatewaySettings, RouteTable, WebSocket
from gateway.runtime import Runtime

__all__ = ["NO_WEBSOCKETS", "Gateway", "build_gateway"]

NO_WEBSOCKETS = 64 * 1024  # the message size uvicorn is told when no route takes WebSockets


@dataclass(frozen=True, slots=True, eq=False)
class Gateway:
    table: RouteTable
    router: Router
    handlers: Mapping[str, Handler]
    policies: Mapping[str, RoutePolicy]
    runtime: Runtime
    query_params: frozenset[str]  # credential parameters: never logged
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
    authenticators = build_authenticators(table, runtime)
    parts = Parts(
        table=table,
        clients=runtime.clients.for_upstreams(table.upstreams),
        guards=runtime.guards_for(table.upstreams),
        runtime=runtime,
        identity_headers=owned_headers(authenticators),
        credentials={name: a.credential_header for name, a in authenticators.items()},
    )
    return Gateway(
        table=table,
        router=Router(table.routes),
        handlers={r.name: build_route_handler(r, parts) for r in table.routes},
        policies={r.name: build_policy(r, authenticators, table.hooks) for r in table.routes},
        runtime=runtime,
        query_params=query_params(authenticators),
        websocket_max_size=max(
            (r.kind.max_message_size for r in table.routes if isinstance(r.kind, WebSocket)),
            default=NO_WEBSOCKETS,
        ),
    )
