"""Per-route request pipelines, composed once when a routes table loads.

A `Handler` answers one matched request; a `Stage` wraps a handler with one
concern and returns it unchanged when the route does not use that concern
(KrakenD's proxy factory does the same). `build_route_handler` is the whole
composition, read top to bottom:

    aggregate routes:  AggregateHandler  (render -> fan out -> shape -> merge)
    proxy routes:      ProxyHandler      (render -> stream through)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import httpx
from django.http.response import HttpResponseBase

from ..config.model import GatewaySettings, Route, Upstream
from ..context import GatewayRequest
from ..router import Match
from .aggregate import AggregateHandler
from .proxy import ProxyHandler

__all__ = ["Handler", "Stage", "build_route_handler"]

type Handler = Callable[[GatewayRequest, Match], Awaitable[HttpResponseBase]]
type Stage = Callable[[Route, Handler], Handler]

STAGES: tuple[Stage, ...] = ()


def build_route_handler(
    route: Route,
    settings: GatewaySettings,
    upstreams: Mapping[str, Upstream],
    clients: Mapping[str, httpx.AsyncClient],
) -> Handler:
    handler: Handler
    if route.proxy is not None:
        handler = ProxyHandler(route, settings, upstreams, clients)
    else:
        handler = AggregateHandler(route, settings, upstreams, clients)
    for stage in STAGES:
        handler = stage(route, handler)
    return handler
