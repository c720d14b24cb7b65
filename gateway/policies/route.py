"""A route's policies: auth, rate limit, CORS and its request hooks (global
ones first), built once per route when the routes load (gateway/assembly.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.policies.auth import Authenticator, RouteAuth, build_route_auth
from gateway.policies.cors import RouteCors, build_cors
from gateway.policies.ratelimit import RouteLimit, build_route_limit
from gateway.routes.model import Hook, Hooks, Route

__all__ = ["RoutePolicy", "build_policy"]


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    auth: RouteAuth | None = None
    limit: RouteLimit | None = None
    cors: RouteCors | None = None
    request_hooks: tuple[Hook, ...] = ()  # run after auth and the rate limit


def build_policy(
    route: Route, authenticators: Mapping[str, Authenticator], global_hooks: Hooks
) -> RoutePolicy:
    return RoutePolicy(
        auth=build_route_auth(route, authenticators),
        limit=build_route_limit(route),
        cors=build_cors(route, route.cors) if route.cors is not None else None,
        request_hooks=global_hooks.request + route.hooks.request,
    )
