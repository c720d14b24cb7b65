"""CORS (SPEC 3.8): with a `cors` policy on the route (or in settings) the
gateway owns CORS. It answers preflights itself (204, before auth and rate
limits, never forwarded) and adds Access-Control-Allow-Origin, with
`Vary: Origin`, to actual responses for allowed origins. A disallowed origin
gets no CORS headers. Upstreams' own Access-Control-* headers are dropped by
the proxy handler, so they never appear twice. A preflight's policy is that of
the route that would serve the method it announces: the handler looked it up
when it built the envelope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from gateway.edge.middleware import AsyncMiddleware
from gateway.envelope import GatewayRequest
from gateway.errors import Forbidden
from gateway.routes.model import CorsPolicy, Route

__all__ = ["CorsMiddleware", "RouteCors", "admit_origin", "build_cors"]

_PREFLIGHT_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"


@dataclass(frozen=True, slots=True)
class RouteCors:
    origins: frozenset[str]
    any_origin: bool
    credentials: bool
    preflight: tuple[tuple[str, str], ...]  # besides the origin
    expose: str | None

    def allows(self, origin: str) -> bool:
        return self.any_origin or origin in self.origins


def build_cors(route: Route, policy: CorsPolicy) -> RouteCors:
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


def admit_origin(cors: RouteCors | None, origin: str | None) -> None:
    """A WebSocket handshake is not subject to the browser's CORS checks: with
    CORS configured, the gateway refuses a browser's disallowed Origin itself
    (403). Clients that send no Origin (not browsers) are not asked."""
    if cors is not None and origin is not None and not cors.allows(origin):
        raise Forbidden(f"origin {origin!r} is not allowed")


class CorsMiddleware(AsyncMiddleware):
    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        envelope = cast(GatewayRequest, request).envelope
        cors = envelope.cors  # a preflight's: that of the route serving the announced method
        origin = request.META.get("HTTP_ORIGIN")
        if envelope.preflight and cors is not None and origin:
            return _preflight(cors, origin)
        response = await self.get_response(request)
        if cors is not None:
            _vary_origin(response)
            if origin and cors.allows(origin):
                response.headers["Access-Control-Allow-Origin"] = origin
                if cors.credentials:
                    response.headers["Access-Control-Allow-Credentials"] = "true"
                if cors.expose:
                    response.headers["Access-Control-Expose-Headers"] = cors.expose
        return response


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
