"""Per-route request pipelines, composed once when a routes table loads.

A `Handler` answers one matched request. `build_route_handler` picks the
builder of the route's kind; each builder shows its route's whole pipeline:

    Aggregate  gateway/pipeline/aggregate: every backend a chain of stages
               (render -> send -> decode -> shape), fanned out and merged,
               behind the cache when the route has one
    Proxy      gateway/pipeline/proxy.py: render -> guarded send -> relay
    WebSocket  gateway/pipeline/websocket.py: a plain request 426; a handshake
               (from the edge): guarded upstream handshake -> accept -> relay

A new route kind is one module with a builder, registered in BUILDERS, plus
its reader in gateway/routes/. Auth, rate limits and CORS are middleware
(gateway/policies): they apply to every kind and answer before any handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from django.http.response import HttpResponseBase

from gateway.envelope import GatewayRequest
from gateway.router import Match
from gateway.routes.model import Aggregate, Proxy, Route, RouteTable, WebSocket
from gateway.upstream.attempts import UpstreamGuard
from gateway.upstream.render import OWNED_REQUEST

if TYPE_CHECKING:
    from gateway.runtime import Runtime

__all__ = ["BUILDERS", "Handler", "Parts", "build_route_handler"]

type Handler = Callable[[GatewayRequest, Match], Awaitable[HttpResponseBase]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Parts:
    """What route handlers are built from, besides the route itself."""

    table: RouteTable
    clients: Mapping[str, httpx.AsyncClient]  # by upstream name
    guards: Mapping[str, UpstreamGuard]  # by upstream name
    runtime: Runtime
    identity_headers: frozenset[bytes]  # set by auth providers: clients' copies never pass
    credentials: Mapping[str, bytes]  # by provider name: the header it consumes

    def credentials_of(self, route: Route) -> frozenset[bytes]:
        """The credentials this route's providers consume: not forwarded
        unless a forward_headers list names them."""
        return frozenset(self.credentials[name] for name in route.auth)

    def not_relayed(
        self, route: Route, static: Collection[tuple[bytes, bytes]]
    ) -> frozenset[bytes]:
        """Client headers a relaying route (proxy, websocket) never passes on:
        what the gateway sets, forged identities, the upstream's own static
        headers and (unless settings.forward_headers names them) cookies and
        the credential the route's auth consumed."""
        named = {h.encode() for h in self.table.settings.forward_headers}
        optional = ({b"cookie"} | self.credentials_of(route)) - named
        return frozenset(OWNED_REQUEST | self.identity_headers | optional | {n for n, _ in static})


# A route kind's type -> its builder (imported here, after Parts and Handler,
# which the builders' modules refer to).
from gateway.pipeline.aggregate import build_aggregate  # noqa: E402
from gateway.pipeline.proxy import build_proxy  # noqa: E402
from gateway.pipeline.websocket import build_websocket  # noqa: E402

BUILDERS: Mapping[type, Callable[[Route, Any, Parts], Handler]] = {
    Aggregate: build_aggregate,
    Proxy: build_proxy,
    WebSocket: build_websocket,
}


def build_route_handler(route: Route, parts: Parts) -> Handler:
    return BUILDERS[type(route.kind)](route, route.kind, parts)
