"""Per-route request pipelines, composed once when a routes table loads.

A `Handler` answers one matched request; a wrapper adds one concern only to
the routes that use it (KrakenD's proxy factory does the same).
`build_route_handler` is the whole composition, read top to bottom:

    aggregate routes:  AggregateHandler  (render -> fan out -> shape -> merge)
                       + CachedAggregate when the route has `cache` (coalescing)
    proxy routes:      ProxyHandler      (render -> stream through)

Auth, rate limits and CORS are middleware (gateway/middleware/): they apply to
every route kind and answer before any handler runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from django.http.response import HttpResponseBase

from gateway.envelope import GatewayRequest
from gateway.pipeline.aggregate.handler import AggregateHandler, CachedAggregate
from gateway.pipeline.proxy import ProxyHandler
from gateway.router import Match
from gateway.routes.model import Route, RouteTable
from gateway.upstream.attempts import UpstreamGuard

if TYPE_CHECKING:
    from gateway.runtime import Services

__all__ = ["Handler", "Upstreams", "build_route_handler"]

type Handler = Callable[[GatewayRequest, Match], Awaitable[HttpResponseBase]]


@dataclass(frozen=True, slots=True)
class Upstreams:
    """What a handler needs to call upstreams, by upstream name."""

    clients: Mapping[str, httpx.AsyncClient]
    guards: Mapping[str, UpstreamGuard]


def build_route_handler(
    route: Route, table: RouteTable, upstreams: Upstreams, services: Services
) -> Handler:
    if route.proxy is not None:
        return ProxyHandler(route, table, upstreams.clients, upstreams.guards)
    aggregate = AggregateHandler(route, table, upstreams.clients, upstreams.guards, services.memory)
    if route.cache is not None:
        return CachedAggregate(aggregate, route.cache.ttl, services.coalescer)
    return aggregate
