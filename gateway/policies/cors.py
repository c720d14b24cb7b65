"""CORS (SPEC 3.8): with a `cors` policy on the route (or in settings) the
gateway owns CORS. It answers preflights itself (204, before auth and rate
limits, never forwarded) and adds Access-Control-Allow-Origin, with
`Vary: Origin`, to actual responses for allowed origins. A disallowed origin
gets no CORS headers. Upstreams' own Access-Control-* headers are dropped by
the proxy handler, so they never appear twice."""

from __future__ import annotations

from typing import cast

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from gateway.edge.middleware import AsyncMiddleware
from gateway.envelope import GatewayRequest
from gateway.policies import RouteCors
from gateway.registry import Gateway
from gateway.router import Match

__all__ = ["CorsMiddleware"]

_PREFLIGHT_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"


class CorsMiddleware(AsyncMiddleware):
    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        meta = request.META
        origin = meta.get("HTTP_ORIGIN")
        if origin and request.method == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in meta:
            cors = _preflight_policy(request, meta["HTTP_ACCESS_CONTROL_REQUEST_METHOD"])
            if cors is not None:
                return _preflight(cors, origin)
        response = await self.get_response(request)
        policy = cast(GatewayRequest, request).gateway.policy
        if policy is not None and (cors := policy.cors) is not None:
            _vary_origin(response)
            if origin and cors.allows(origin):
                response.headers["Access-Control-Allow-Origin"] = origin
                if cors.credentials:
                    response.headers["Access-Control-Allow-Credentials"] = "true"
                if cors.expose:
                    response.headers["Access-Control-Expose-Headers"] = cors.expose
        return response


def _preflight_policy(request: HttpRequest, method: str) -> RouteCors | None:
    """The CORS policy of the route that would serve the announced method."""
    scope = getattr(request, "scope", {})
    state = cast(Gateway | None, scope.get("gateway.state"))
    if state is None:
        return None
    found = state.match(
        method.strip().upper(), scope.get("raw_path", b"").decode("latin-1") or request.path
    )
    if not isinstance(found, Match):
        return None
    return state.policies[found.route.name].cors


def _preflight(cors: RouteCors, origin: str) -> HttpResponse:
    response = HttpResponse(status=204)
    del response.headers["Content-Type"]
    response.headers["Vary"] = _PREFLIGHT_VARY
    if cors.allows(origin):
        response.headers["Access-Control-Allow-Origin"] = origin
        for name, value in cors.preflight:
            response.headers[name] = value
        if cors.credentials:
            response.headers["Access-Control-Allow-Credentials"] = "true"
    return response


def _vary_origin(response: HttpResponseBase) -> None:
    vary = response.headers.get("Vary")
    if not vary:
        response.headers["Vary"] = "Origin"
    elif "origin" not in vary.lower():
        response.headers["Vary"] = vary + ", Origin"
