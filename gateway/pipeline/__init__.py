"""Per-route request pipelines, composed once when a routes table loads.

A `Handler` answers one matched request; a `Stage` wraps a handler with one
concern and returns it unchanged when the route does not use that concern
(KrakenD's proxy factory does the same). `build_route_handler` is the whole
composition, read top to bottom:

    aggregate routes:  AggregateHandler  (render -> fan out -> shape -> merge)
                       + CachedAggregate when the route has `cache` (coalescing)
    proxy routes:      ProxyHandler      (render -> stream through)

Auth, rate limits and CORS are middleware (gateway/middleware/): they apply to
every route kind and answer before any handler runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

import httpx
from django.http.response import HttpResponseBase

from ..config.model import Route, RouteTable
from ..context import GatewayRequest
from ..router import Match
from .aggregate import AggregateHandler, CachedAggregate
from .proxy import ProxyHandler

if TYPE_CHECKING:
    from ..services import Services

__all__ = ["Handler", "build_route_handler"]

type Handler = Callable[[GatewayRequest, Match], Awaitable[HttpResponseBase]]


def build_route_handler(
    route: Route, table: RouteTable, clients: Mapping[str, httpx.AsyncClient], services: Services
) -> Handler:
    if route.proxy is not None:
        return ProxyHandler(route, table, clients)
    aggregate = AggregateHandler(route, table, clients)
    if route.cache is not None:
        return CachedAggregate(aggregate, route.cache.ttl, services.coalescer)
    return aggregate
