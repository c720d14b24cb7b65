"""Views: what answers a request no route matched, the probes, the OpenAPI
document and its explorer.

A request a route matched never reaches a view: RouteMiddleware runs the
route's stack (gateway/edge/middleware.py). The match was made by the ASGI
handler before the body was read; `no_route` says why there was none.
"""

from __future__ import annotations

import orjson
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from gateway import serving
from gateway.edge.explorer import explorer_asset, explorer_page
from gateway.envelope import GatewayRequest
from gateway.errors import (
    BadRequest,
    GatewayError,
    MethodNotAllowed,
    NotFound,
    error_response,
    problem_response,
)
from gateway.observe.readiness import readiness
from gateway.registry import openapi_document
from gateway.router import BadPath, NoMatch

__all__ = [
    "api_docs",
    "api_docs_asset",
    "healthz",
    "no_route",
    "not_on_this_port",
    "openapi_json",
    "readyz",
    "unmatched",
]

_OK = b'{"status":"ok"}'


async def no_route(request: GatewayRequest) -> HttpResponseBase:
    """No route matched: why (400, 404, 405), or none are loaded (503)."""
    envelope = request.envelope
    found = envelope.found
    if found is None:
        return problem_response(503, "no routes are loaded", request_id=envelope.request_id)
    if isinstance(found, NoMatch | BadPath):
        return error_response(unmatched(found), request_id=envelope.request_id, route=None)
    # A match never gets here (RouteMiddleware answers it): a bug if it does.
    raise GatewayError(f"route {found.route.name!r} reached the view")


def unmatched(found: NoMatch | BadPath) -> GatewayError:
    """Why no route serves this request: a bad path (400), a path that no
    route has (404), or a route without this method (405)."""
    if isinstance(found, BadPath):
        return BadRequest(str(found))
    if found.allowed:
        return MethodNotAllowed(found.allowed)
    return NotFound("no route matches this path")


_OPENAPI: list[tuple[object, bytes]] = []  # (the routes table it describes, the JSON)


async def openapi_json(request: GatewayRequest) -> HttpResponseBase:
    """The routed API as OpenAPI 3.1, for the routes serving now."""
    gateway = serving.current()
    if gateway is None:
        return problem_response(503, "no routes are loaded", request_id=request.envelope.request_id)
    if not _OPENAPI or _OPENAPI[0][0] is not gateway.table:  # built once per table
        _OPENAPI[:] = [(gateway.table, orjson.dumps(openapi_document(gateway.table)))]
    return _json(_OPENAPI[0][1])


async def api_docs(request: GatewayRequest) -> HttpResponseBase:
    """The API explorer (Swagger UI) over /_gateway/openapi.json."""
    return explorer_page()


async def api_docs_asset(request: GatewayRequest, name: str) -> HttpResponseBase:
    """Swagger UI's files and the explorer's own script, from the package."""
    return explorer_asset(name, request.envelope.request_id)


def _json(content: bytes, status: int = 200) -> HttpResponse:
    response = HttpResponse(content, status=status, content_type="application/json")
    response.headers["Content-Length"] = str(len(content))
    return response


async def healthz(request: HttpRequest) -> HttpResponseBase:
    """200 while the process runs."""
    return _json(_OK)


async def readyz(request: GatewayRequest) -> HttpResponseBase:
    """200 when a routes table is loaded, Redis (if any) answers and the
    process is not draining (the admin listener answers the same)."""
    status, detail = await readiness()
    if status != 200:
        return problem_response(status, detail, request_id=request.envelope.request_id)
    return _json(b'{"status":"ready"}')


async def not_on_this_port(request: GatewayRequest) -> HttpResponseBase:
    """/metrics lives on the admin listener (ADMIN_ADDR): the client port never
    serves admin paths."""
    return problem_response(
        404, "no route matches this path", request_id=request.envelope.request_id
    )
