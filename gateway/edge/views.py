"""Views: the route view every gateway path reaches, and the probes.

The route and its parameters were matched by the ASGI handler before the body
was read (the route's max_body_size applies as it arrives); the view reads that
match from the scope instead of matching twice.
"""

from __future__ import annotations

import logging

from django.core.exceptions import BadRequest as DjangoBadRequest
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from gateway import registry
from gateway.envelope import GatewayRequest
from gateway.errors import (
    BadRequest,
    GatewayError,
    MethodNotAllowed,
    NotFound,
    error_response,
    problem_response,
)
from gateway.observe import metrics as gateway_metrics
from gateway.router import BadPath, NoMatch

__all__ = ["healthz", "metrics", "readyz", "route_view"]

logger = logging.getLogger("gateway")
_OK = b'{"status":"ok"}'


async def route_view(request: GatewayRequest) -> HttpResponseBase:
    ctx = request.gateway
    scope = request.scope
    state = scope.get("gateway.state") or registry.current()
    if state is None:
        return problem_response(503, "no routes are loaded", request_id=ctx.request_id)
    found = scope.get("gateway.match") or state.match(request.method or "GET", request.path)
    try:
        if isinstance(found, BadPath):
            raise BadRequest(str(found))
        if isinstance(found, NoMatch):
            raise (
                MethodNotAllowed(found.allowed)
                if found.allowed
                else NotFound("no route matches this path")
            )
        ctx.route = found.route.name
        if (error := scope.get("gateway.body_error")) is not None:
            raise error
        return await state.handlers[found.route.name](request, found)
    except GatewayError as exc:
        return error_response(exc, request_id=ctx.request_id, route=ctx.route)
    except (SuspiciousOperation, DjangoBadRequest) as exc:  # e.g. too many query fields
        error = BadRequest(str(exc) or "malformed request")
        return error_response(error, request_id=ctx.request_id, route=ctx.route)
    except Exception:
        logger.exception(
            "unhandled error in route %s", ctx.route, extra={"request_id": ctx.request_id}
        )
        return problem_response(500, "internal error", request_id=ctx.request_id, route=ctx.route)


def _json(content: bytes, status: int = 200) -> HttpResponse:
    response = HttpResponse(content, status=status, content_type="application/json")
    response.headers["Content-Length"] = str(len(content))
    return response


async def healthz(request: HttpRequest) -> HttpResponseBase:
    """200 while the process runs."""
    return _json(_OK)


async def readyz(request: HttpRequest) -> HttpResponseBase:
    """200 when a routes table is loaded and the process is not draining."""
    ctx = getattr(request, "gateway", None)
    request_id = ctx.request_id if ctx else ""
    gateway = registry.current()
    if gateway is None:
        return problem_response(503, "no routes are loaded", request_id=request_id)
    if registry.lifecycle.draining:
        return problem_response(503, "shutting down", request_id=request_id)
    if not await gateway.services.redis_ready():
        return problem_response(503, "redis does not answer", request_id=request_id)
    return _json(b'{"status":"ready"}')


async def metrics(request: HttpRequest) -> HttpResponseBase:
    """Prometheus text exposition."""
    content = gateway_metrics.render()
    return HttpResponse(content, content_type=gateway_metrics.CONTENT_TYPE_LATEST)
