"""What a route's stack is made of, and how policies and route kinds register.

A route's handler answers a `RouteCall` (gateway/envelope.py) with a Django
response, or with None once it has answered over the socket itself (a
WebSocket pair, relayed to its end). A stage wraps a handler into another
(`Stage[RouteCall, Answer]`): it may refuse by raising a GatewayError
before the inner handler runs, add headers to the answer
(`call.answer_headers`), and change or watch the answer after.
gateway/registry.py composes each route's stack once, at load.

A policy registers a `Policy`: its keys in the routes file (`option`, read
by gateway/routes), the stage it puts in a route's stack (None where the
route does not use it), what it adds to the OpenAPI document and to the
dashboard, and what it tells the route kinds about headers (the identity
headers it sets for backends, the client headers it consumes, the query
parameters that carry credentials). A route kind registers a `Kind`: its
reader, its handler's builder, its OpenAPI description.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from django.http.response import HttpResponseBase

from gateway.envelope import RouteCall
from gateway.types import Handler, Stage
from gateway.upstream.render import OWNED_REQUEST

if TYPE_CHECKING:
    import httpx

    from gateway.routes.model import Route, RouteTable
    from gateway.routes.openapi import Description
    from gateway.routes.vocabulary import KindReader, Option
    from gateway.runtime import Runtime
    from gateway.upstream.attempts import UpstreamGuard

__all__ = ["Answer", "BuildContext", "Kind", "Panel", "Policy", "RouteHandler", "RouteStage"]

type Answer = HttpResponseBase | None  # None: answered over the socket (a WebSocket pair)
type RouteHandler = Handler[RouteCall, Answer]
type RouteStage = Stage[RouteCall, Answer]


@dataclass(frozen=True, slots=True, kw_only=True)
class Panel:
    """What a policy shows operators: a JSON document at `path` on the admin
    listener, and on the dashboard as a table under `title` (the document's
    `columns` and `rows`; `note` under the title)."""

    path: str  # "/consumers"
    title: str
    # The document; with a limit, its first `limit` rows only (the dashboard's).
    document: Callable[[int | None], dict[str, Any]]
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """One policy: a stage of the routes that use it."""

    name: str
    option: Option[Any] | None = None  # its keys in the routes file (None: none of its own)
    # Its stage for a route, or None when the route does not use it.
    stage: Callable[[Route, BuildContext], RouteStage | None]
    # OpenAPI: what it adds to a route's operations (statuses, headers,
    # security) and to the document (security schemes).
    describe: Callable[[Route, Description], None] | None = None
    describe_document: Callable[[RouteTable, dict[str, Any]], None] | None = None
    # The dashboard's line on a route that uses it ("10/1m by client").
    summary: Callable[[Route], str | None] | None = None
    # Headers it sets for backends (on every route: clients' copies never pass).
    owned_headers: Callable[[BuildContext], Collection[bytes]] | None = None
    # Client headers it consumes on a route: not relayed unless forward_headers names them.
    consumed_headers: Callable[[Route, BuildContext], Collection[bytes]] | None = None
    # Query parameters that carry credentials on a route (name -> provider):
    # taken out of the query before anything reads it.
    query_credentials: Callable[[Route, BuildContext], Mapping[str, str]] | None = None
    # Query parameters whose values are never logged, whatever the route.
    secret_params: Callable[[BuildContext], Collection[str]] | None = None
    # Its stage answers CORS preflights for the routes it is on (the edge
    # matches a preflight to the route of the method it announces).
    answers_preflights: bool = False
    # What it shows on the admin listener and the dashboard.
    panels: tuple[Panel, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Kind:
    """One route kind: the innermost handler of its routes."""

    reader: KindReader
    build: Callable[[Route, BuildContext], RouteHandler]
    describe: Callable[[Route, Description], None]
    handshakes: bool = False  # takes WebSocket handshakes
    operations: bool = True  # OpenAPI: HTTP operations (False: listed beside them)
    max_message_size: Callable[[Route], int] | None = None  # WebSocket messages
    # Wraps the route's whole stack: its refusals answered the kind's way (gRPC).
    answer_errors: Callable[[RouteHandler], RouteHandler] | None = None

    @property
    def name(self) -> str:
        return self.reader.name


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildContext:
    """What a routes table's stacks are built from, besides each route: the
    table, the runtime, each upstream's client and guard, and the policies
    (for what they say about headers)."""

    table: RouteTable
    runtime: Runtime
    clients: Mapping[str, httpx.AsyncClient]  # by upstream name
    guards: Mapping[str, UpstreamGuard]  # by upstream name
    policies: tuple[Policy, ...] = ()
    _memo: dict[Hashable, Any] = field(default_factory=dict, repr=False)

    def once[T](self, key: Hashable, make: Callable[[], T]) -> T:
        """What `make` builds, once per table (every auth provider, built
        for the first route that names one)."""
        if key not in self._memo:
            self._memo[key] = make()
        return cast(T, self._memo[key])

    @property
    def owned_headers(self) -> frozenset[bytes]:
        """Every header a policy sets for backends: dropped from every client
        request on every route, so no upstream is ever handed a forged one."""
        return self.once(
            ("owned-headers",),
            lambda: frozenset(
                name
                for policy in self.policies
                if policy.owned_headers is not None
                for name in policy.owned_headers(self)
            ),
        )

    def consumed(self, route: Route) -> frozenset[bytes]:
        """Client headers this route's policies consume (its auth's credential)."""
        return frozenset(
            name
            for policy in self.policies
            if policy.consumed_headers is not None
            for name in policy.consumed_headers(route, self)
        )

    def query_credentials(self, route: Route) -> Mapping[str, str]:
        out: dict[str, str] = {}
        for policy in self.policies:
            if policy.query_credentials is not None:
                for name, provider in policy.query_credentials(route, self).items():
                    out.setdefault(name, provider)
        return out

    def secret_params(self) -> frozenset[str]:
        return frozenset(
            name
            for policy in self.policies
            if policy.secret_params is not None
            for name in policy.secret_params(self)
        )

    def not_relayed(
        self, route: Route, static: Collection[tuple[bytes, bytes]]
    ) -> frozenset[bytes]:
        """Client headers a relaying route (proxy, websocket) never passes on:
        what the gateway sets, forged identities, the upstream's own static
        headers, what the gateway reads for its upstream (`read_for`), and
        (unless settings.forward_headers names them) cookies and the
        credentials the route's policies consumed."""
        named = {h.encode() for h in self.table.settings.forward_headers}
        optional = ({b"cookie"} | self.consumed(route)) - named
        upstream = getattr(route.kind, "upstream", None)  # proxy and websocket kinds name one
        read = self.read_for(upstream) if isinstance(upstream, str) else frozenset()
        return frozenset(
            OWNED_REQUEST | self.owned_headers | optional | read | {n for n, _ in static}
        )

    def read_for(self, upstream: str) -> frozenset[bytes]:
        """Client headers the gateway reads for calls to `upstream` and never
        passes on, whatever a forward_headers list says: its override header."""
        override = self.table.upstreams[upstream].override_header
        return frozenset({override.encode()}) if override is not None else frozenset()
