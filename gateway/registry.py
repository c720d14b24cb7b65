"""The one mutable holder: the gateway currently serving.

A `Gateway` is everything built from one routes table (router, per-route
handlers, upstream clients). Loading builds a new one beside the old and swaps
this single reference; a request keeps the Gateway it started with until it ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.pipeline import Handler, Upstreams, build_route_handler
from gateway.policies import RoutePolicy, build_policy
from gateway.router import BadPath, Match, NoMatch, Router, split_path
from gateway.routes.model import GatewaySettings, RouteTable
from gateway.runtime import Services

__all__ = ["Gateway", "build_gateway", "current", "install", "lifecycle"]


@dataclass(frozen=True, slots=True, eq=False)
class Gateway:
    table: RouteTable
    router: Router
    handlers: Mapping[str, Handler]
    policies: Mapping[str, RoutePolicy]
    services: Services

    @property
    def settings(self) -> GatewaySettings:
        return self.table.settings

    def match(self, method: str, raw_path: str) -> Match | NoMatch | BadPath:
        try:
            segments = split_path(raw_path)
        except BadPath as exc:
            return exc
        return self.router.match(method, segments)


def build_gateway(table: RouteTable, services: Services) -> Gateway:
    upstreams = Upstreams(
        clients=services.clients.for_upstreams(table.upstreams),
        guards=services.guards_for(table.upstreams),
    )
    return Gateway(
        table=table,
        router=Router(table.routes),
        handlers={r.name: build_route_handler(r, table, upstreams, services) for r in table.routes},
        policies={r.name: build_policy(r, table, services) for r in table.routes},
        services=services,
    )


@dataclass(slots=True)
class Lifecycle:
    draining: bool = False  # set on shutdown: /readyz answers 503 from then on


lifecycle = Lifecycle()
_current: Gateway | None = None


def current() -> Gateway | None:
    return _current


def install(gateway: Gateway | None) -> None:
    global _current
    _current = gateway
