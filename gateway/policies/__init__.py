"""Per-route policies (auth, rate limit, CORS), built once when a routes table
loads. Middleware reads the policy of the route the handler matched; nothing
matches a path twice (a CORS preflight aside, which asks about another method).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.envelope import RequestContext
from gateway.policies.auth import Authenticator, build_authenticator
from gateway.routes.model import CorsPolicy, JwtProvider, Route, RouteTable

if TYPE_CHECKING:
    from gateway.runtime import Services

__all__ = [
    "RouteAuth",
    "RouteCors",
    "RouteLimit",
    "RoutePolicy",
    "build_policy",
    "credential_header_names",
    "identity_header_names",
]


@dataclass(frozen=True, slots=True)
class RouteAuth:
    authenticators: tuple[Authenticator, ...]  # any one suffices, tried in this order
    scopes: frozenset[str]  # all required
    challenge: str  # WWW-Authenticate


@dataclass(frozen=True, slots=True)
class RouteLimit:
    route: str
    limit: int
    capacity: int
    rate: float  # tokens per second
    key: str  # "client", "ip", "global" or "header:<name>"
    header_meta: str | None  # META key of the header for "header:<name>"

    def bucket(self, ctx: RequestContext, meta: Mapping[str, str]) -> str:
        """The bucket this request draws from (SPEC 3.5 `key`)."""
        if self.key == "global":
            who = "global"
        elif self.key == "client" and (identity := ctx.identity_key) is not None:
            who = "id:" + identity
        elif self.header_meta is not None and (value := meta.get(self.header_meta)):
            who = "h:" + hashlib.sha256(value.encode()).hexdigest()[:32]
        else:
            who = "ip:" + ctx.client
        return f"{self.route}:{who}"


@dataclass(frozen=True, slots=True)
class RouteCors:
    origins: frozenset[str]
    any_origin: bool
    credentials: bool
    preflight: tuple[tuple[str, str], ...]  # besides the origin
    expose: str | None

    def allows(self, origin: str) -> bool:
        return self.any_origin or origin in self.origins


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    auth: RouteAuth | None = None
    limit: RouteLimit | None = None
    cors: RouteCors | None = None


def _cors(route: Route, policy: CorsPolicy) -> RouteCors:
    methods = policy.allow_methods or tuple(sorted(route.methods))
    preflight = [
        ("Access-Control-Allow-Methods", ", ".join(methods)),
        ("Access-Control-Max-Age", str(int(policy.max_age))),
    ]
    if policy.allow_headers:
        preflight.append(("Access-Control-Allow-Headers", ", ".join(policy.allow_headers)))
    return RouteCors(
        origins=frozenset(policy.allow_origins),
        any_origin=policy.any_origin,
        credentials=policy.allow_credentials and not policy.any_origin,
        preflight=tuple(preflight),
        expose=", ".join(policy.expose_headers) or None,
    )


def build_policy(route: Route, table: RouteTable, services: Services) -> RoutePolicy:
    auth = None
    if route.auth:
        authenticators = []
        for name in route.auth:
            provider = table.auth[name]
            jwks = None
            if isinstance(provider, JwtProvider) and provider.jwks_url:
                jwks = services.jwks(provider.jwks_url)
            authenticators.append(build_authenticator(provider, jwks))
        challenge = ", ".join(dict.fromkeys(a.challenge for a in authenticators))
        auth = RouteAuth(tuple(authenticators), route.scopes, challenge)
    limit = None
    if (spec := route.rate_limit) is not None:
        header = spec.key.partition(":")[2] if spec.key.startswith("header:") else None
        limit = RouteLimit(
            route=route.name,
            limit=spec.limit,
            capacity=spec.burst,
            rate=spec.limit / spec.window,
            key=spec.key,
            header_meta="HTTP_" + header.upper().replace("-", "_") if header else None,
        )
    cors = _cors(route, route.cors) if route.cors is not None else None
    return RoutePolicy(auth=auth, limit=limit, cors=cors)


def identity_header_names(table: RouteTable) -> frozenset[bytes]:
    """Every header any auth provider sets for backends: a client's own copies
    are dropped on every route, so no upstream can be handed a forged identity."""
    names: set[str] = set()
    for provider in table.auth.values():
        if isinstance(provider, JwtProvider):
            names.update(header for _, header in provider.claims_to_headers)
        elif provider.identity_header:
            names.add(provider.identity_header)
    return frozenset(n.encode() for n in names)


def credential_header_names(route: Route, table: RouteTable) -> frozenset[bytes]:
    """The credentials this route's providers consume (API key header, or
    Authorization): not forwarded unless a forward_headers list names them."""
    names = set()
    for name in route.auth:
        provider = table.auth.get(name)
        if isinstance(provider, JwtProvider):
            names.add(b"authorization")
        elif provider is not None:
            names.add(provider.header.encode())
    return frozenset(names)
