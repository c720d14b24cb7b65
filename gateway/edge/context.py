"""The request's envelope, built from the ASGI scope before anything else, and
the first middleware: the Host check, X-Request-ID on every answer, and the
last-chance error net, so that no answer shows a traceback."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from gateway.edge.address import Networks, make_request_id, resolve_client
from gateway.edge.middleware import AsyncMiddleware, GetResponse
from gateway.envelope import Envelope, GatewayRequest
from gateway.errors import problem_response
from gateway.observe.readiness import PROBES
from gateway.observe.trace import continue_or_start
from gateway.query import may_hold, take_credentials
from gateway.router import Match

if TYPE_CHECKING:
    from gateway.assembly import Gateway

__all__ = ["EdgeMiddleware", "open_envelope"]

logger = logging.getLogger("gateway")
_PROTO = {"ws": "http", "wss": "https"}  # a WebSocket handshake came over HTTP(S)
# The request headers the envelope needs, found in one pass.
_WANTED = frozenset(
    {
        b"host",
        b"origin",
        b"x-request-id",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"access-control-request-method",
        b"traceparent",
        b"tracestate",
    }
)


def open_envelope(scope: dict[str, Any], gateway: Gateway | None, trusted: Networks) -> Envelope:
    """Match the route (for a CORS preflight, also the route that would serve
    the announced method: its CORS policy answers it) and resolve who is asking."""
    headers: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in _WANTED and name not in headers:
            headers[name] = value.decode("latin-1")
    peer = scope.get("client")
    address = resolve_client(peer[0] if peer else None, headers.get(b"x-forwarded-for"), trusted)
    scheme = str(scope.get("scheme", "http"))
    proto, host = _PROTO.get(scheme, scheme), headers.get(b"host", "")
    if address.via_trusted_proxy:
        proto = headers.get(b"x-forwarded-proto", "").split(",")[0].strip() or proto
        host = headers.get(b"x-forwarded-host", "").split(",")[0].strip() or host
    envelope = Envelope(
        gateway=gateway,
        found=None,
        request_id=make_request_id(headers.get(b"x-request-id")),
        client=address.client,
        forwarded_for=address.forwarded_for,
        forwarded_proto=proto,
        forwarded_host=host,
        trace=continue_or_start(headers.get(b"traceparent"), headers.get(b"tracestate")),
    )
    if gateway is None:
        return envelope
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else scope["path"]
    method = scope.get("method", "GET")  # a WebSocket handshake is a GET
    envelope.found = gateway.match(method, path)
    if query := scope.get("query_string"):
        envelope.query = query.decode("latin-1")
    if isinstance(envelope.found, Match):
        envelope.policy = gateway.policies[envelope.found.route.name]
        envelope.cors = envelope.policy.cors
        auth = envelope.policy.auth
        if query and auth is not None and auth.query_params and may_hold(query, auth.query_params):
            # Before anything reads the query: Django, the pipeline, uvicorn's log line.
            scope["query_string"], envelope.query_credentials = take_credentials(
                query, auth.query_params
            )
    announced = headers.get(b"access-control-request-method")
    if method == "OPTIONS" and announced and headers.get(b"origin"):
        envelope.preflight = True
        served = gateway.match(announced.strip().upper(), path)
        envelope.cors = (
            gateway.policies[served.route.name].cors if isinstance(served, Match) else None
        )
    return envelope


class EdgeMiddleware(AsyncMiddleware):
    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        self.check_host = "*" not in settings.ALLOWED_HOSTS

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        envelope = cast(GatewayRequest, request).envelope
        try:
            if self.check_host and request.path not in PROBES:
                request.get_host()
            response = await self.get_response(request)
        except DisallowedHost:
            response = problem_response(400, "host not allowed", request_id=envelope.request_id)
        except Exception:
            logger.exception("unhandled error", extra={"request_id": envelope.request_id})
            response = problem_response(
                500, "internal error", request_id=envelope.request_id, route=envelope.route_name
            )
        response.headers["X-Request-ID"] = envelope.request_id
        return response
