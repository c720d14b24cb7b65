"""Views: the route view every gateway path reaches, and the probes.

The route and its parameters were matched by the ASGI handler before the body
was read (the route's max_body_size applies as it arrives); the view reads that
match, and the Gateway it belongs to, from the request's envelope.
"""

from __future__ import annotations

import logging

import orjson
from django.core.exceptions import BadRequest as DjangoBadRequest
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from gateway import registry
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
from gateway.pipeline.hooks import run_request_hooks
from gateway.router import BadPath, Match, NoMatch
from gateway.routes.openapi import openapi_document

__all__ = [
    "api_docs",
    "api_docs_asset",
    "healthz",
    "not_on_this_port",
    "openapi_json",
    "readyz",
    "route_view",
    "unmatched",
]

logger = logging.getLogger("gateway")
_OK = b'{"status":"ok"}'


async def route_view(request: GatewayRequest) -> HttpResponseBase:
    envelope = request.envelope
    if envelope.gateway is None or envelope.found is None:
        return problem_response(503, "no routes are loaded", request_id=envelope.request_id)
    found, route = envelope.found, envelope.route_name
    try:
        if not isinstance(found, Match):
            raise unmatched(found)
        if envelope.refused is not None:
            raise envelope.refused
        if envelope.policy is not None and envelope.policy.request_hooks:
            await run_request_hooks(
                envelope.policy.request_hooks,
                envelope,
                request.scope,
                found.params,
                found.route.timeout,
            )
        return await envelope.gateway.handlers[found.route.name](request, found)
    except GatewayError as exc:
        return error_response(exc, request_id=envelope.request_id, route=route)
    except (SuspiciousOperation, DjangoBadRequest) as exc:  # e.g. too many query fields
        error = BadRequest(str(exc) or "malformed request")
        return error_response(error, request_id=envelope.request_id, route=route)
    except Exception:
        logger.exception(
            "unhandled error in route %s", route, extra={"request_id": envelope.request_id}
        )
        return problem_response(500, "internal error", request_id=envelope.request_id, route=route)


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
    gateway = registry.current()
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
