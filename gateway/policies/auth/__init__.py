"""Auth (SPEC 3.4): providers that turn a credential into a `Principal`.

A provider kind is one module (api_key.py, jwt.py) with a `KIND`: its `type`
in the routes file, `read` (its section of the routes file, into a frozen
config), and `build` (that config into an `Authenticator`). Registering the
module in KINDS below is all a new kind needs: the routes file reader, the
route policies, the headers the pipeline drops and the auth middleware all
go through the `Authenticator` protocol.

No HTTP types here: the auth middleware turns AuthError / AuthUnavailable
into 401 / 503, and a missing scope into 403.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.policies.auth import api_key, jwt
from gateway.policies.auth.base import (
    Authenticator,
    AuthError,
    AuthUnavailable,
    Principal,
    ProviderKind,
)

if TYPE_CHECKING:
    from gateway.routes.model import Route, RouteTable
    from gateway.runtime import Runtime

__all__ = [
    "KINDS",
    "AuthError",
    "AuthUnavailable",
    "Authenticator",
    "Principal",
    "ProviderKind",
    "RouteAuth",
    "build_authenticators",
    "build_route_auth",
    "owned_headers",
    "query_params",
]


# The provider kinds, by their `type:` in the routes file. A new kind: one
# module with a KIND, added here.
KINDS: Mapping[str, ProviderKind] = {kind.type: kind for kind in (api_key.KIND, jwt.KIND)}


@dataclass(frozen=True, slots=True)
class RouteAuth:
    authenticators: tuple[Authenticator, ...]  # any one suffices, tried in this order
    scopes: frozenset[str]  # all required
    challenge: str  # WWW-Authenticate
    query_params: Mapping[str, str]  # query parameter -> provider: taken out of the query


def build_authenticators(table: RouteTable, runtime: Runtime) -> dict[str, Authenticator]:
    """Every provider of the table, built once."""
    return {name: KINDS[config.type].build(config, runtime) for name, config in table.auth.items()}


def build_route_auth(route: Route, authenticators: Mapping[str, Authenticator]) -> RouteAuth | None:
    if not route.auth:
        return None
    chosen = tuple(authenticators[name] for name in route.auth)
    challenge = ", ".join(dict.fromkeys(a.challenge for a in chosen))
    params: dict[str, str] = {}
    for a in chosen:
        if a.query_param is not None:
            params.setdefault(a.query_param, a.name)
    return RouteAuth(chosen, route.scopes, challenge, params)


def owned_headers(authenticators: Mapping[str, Authenticator]) -> frozenset[bytes]:
    """Every header any provider sets for backends: dropped from every client
    request on every route, so no upstream is ever handed a forged identity."""
    return frozenset().union(*(a.owned_headers for a in authenticators.values()))


def query_params(authenticators: Mapping[str, Authenticator]) -> frozenset[str]:
    """Every provider's query parameter: redacted wherever a query is logged."""
    return frozenset(a.query_param for a in authenticators.values() if a.query_param)
