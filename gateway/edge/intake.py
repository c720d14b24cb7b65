"""What the edge does with a request before anything reads it, for every
route kind (HTTP requests and WebSocket handshakes alike):

- `open_envelope`: the route is matched once (a CORS preflight: to the route
  of the method it announces, when that route answers preflights), who is
  asking is resolved (the client address, X-Forwarded-*, the request id, the
  trace context), and credentials in the query are taken out of it before
  Django, the route or uvicorn's log line can see them;
- `host_allowed`: the Host header against ALLOWED_HOSTS (400 otherwise);
- header names with `_` are dropped (ALLOW_UNDERSCORE_HEADERS=on keeps them).
  Django's META, CGI, PHP and Puma fold `_` and `-` together, so
  `X_Client_Id` would pass for the identity header the gateway sets
  (`X-Client-Id`) in an upstream that does; nginx drops them by default
  (`underscores_in_headers off`) for the same reason;
- a query string of more than DATA_UPLOAD_MAX_NUMBER_FIELDS fields is refused
  (400), counted as Django counts them (one more than its `&`s), whether the
  route parses the query (aggregate) or passes it on as it came (proxy,
  WebSocket).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from gateway.credentials import may_hold, take_credentials
from gateway.edge.address import Networks, make_request_id, resolve_client
from gateway.envelope import Envelope
from gateway.errors import BadRequest
from gateway.observe.trace import continue_or_start
from gateway.router import Match
from gateway.types import Scope

if TYPE_CHECKING:
    from gateway.assembly import Gateway

__all__ = [
    "drop_underscore_headers",
    "host_allowed",
    "open_envelope",
    "too_many_query_fields",
]

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


def open_envelope(scope: Scope, gateway: Gateway | None, trusted: Networks) -> Envelope:
    """Match the route and resolve who is asking."""
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
    envelope.secret_params = gateway.secret_params
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else scope["path"]
    method = scope.get("method", "GET")  # a WebSocket handshake is a GET
    found = gateway.match(method, path)
    announced = headers.get(b"access-control-request-method")
    if method == "OPTIONS" and announced and headers.get(b"origin"):
        served = gateway.match(announced.strip().upper(), path)
        if isinstance(served, Match) and served.route.name in gateway.preflights:
            found, envelope.preflight = served, True
    envelope.found = found
    if query := scope.get("query_string"):
        envelope.query = query.decode("latin-1")
    if isinstance(found, Match) and query:
        params = gateway.query_credentials.get(found.route.name)
        if params and may_hold(query, params):
            # Before anything reads the query: Django, the route, uvicorn's log line.
            scope["query_string"], envelope.query_credentials = take_credentials(query, params)
    return envelope


def host_allowed(scope: Mapping[str, Any]) -> bool:
    """Is the Host header (without one: the server's own address) one of
    ALLOWED_HOSTS? (Django's own check, for HTTP requests and handshakes.)"""
    allowed = settings.ALLOWED_HOSTS
    if "*" in allowed:
        return True
    host = next((v for n, v in scope["headers"] if n == b"host"), None)
    if host is None:
        server = scope.get("server")
        return server is not None and validate_host(str(server[0]), allowed)
    domain, _ = split_domain_port(host.decode("latin-1"))
    return bool(domain) and validate_host(domain, allowed)


def drop_underscore_headers(scope: Scope) -> None:
    """Remove every request header whose name holds `_`, in place."""
    headers = scope["headers"]
    for name, _ in headers:
        if b"_" in name:
            scope["headers"] = [(n, v) for n, v in headers if b"_" not in n]
            return


def too_many_query_fields(query: bytes) -> BadRequest | None:
    """The refusal of a query string with more fields than allowed, if it has."""
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    if limit is not None and query.count(b"&") >= limit:
        return BadRequest(f"the query string has more than {limit} parameters")
    return None
