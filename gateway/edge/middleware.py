"""The gateway's Django middleware: async-only, and two of them.

    EdgeMiddleware   the Host check, X-Request-ID on every answer, the
                     last-chance error net (no answer shows a traceback)
    RouteMiddleware  a matched request runs its route's whole stack (policies
                     and kind, composed at load: gateway/registry.py); the
                     views answer what no route matched, the probes and docs

Django's stock middleware (and anything built on `MiddlewareMixin`) runs its
hooks on a thread under ASGI; none of it is used. Each class here sets
`async_capable = True`, `sync_capable = False` and marks itself a coroutine
function, so Django calls it directly on the event loop. None of them
raises: errors become problem+json where they happen.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, cast

from asgiref.sync import markcoroutinefunction
from django.conf import settings
from django.core.exceptions import BadRequest as DjangoBadRequest
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from gateway.edge.intake import host_allowed
from gateway.envelope import GatewayRequest, open_call
from gateway.errors import BadRequest, GatewayError, error_response, problem_response
from gateway.observe.readiness import PROBES
from gateway.router import Match

if TYPE_CHECKING:
    from gateway.assembly import Gateway

__all__ = ["AsyncMiddleware", "EdgeMiddleware", "EdgeRequest", "GetResponse", "RouteMiddleware"]

logger = logging.getLogger("gateway")

type GetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]


class EdgeRequest(GatewayRequest):
    """The request as the edge keeps it: with the Gateway in use when it
    arrived (it keeps it until it ends, whatever a reload does meanwhile)."""

    gateway: Gateway | None


class AsyncMiddleware:
    async_capable = True
    sync_capable = False

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        raise NotImplementedError


class EdgeMiddleware(AsyncMiddleware):
    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        self.check_host = "*" not in settings.ALLOWED_HOSTS

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        envelope = cast(GatewayRequest, request).envelope
        response: HttpResponseBase
        try:
            if (
                self.check_host
                and request.path not in PROBES
                and not host_allowed(cast(GatewayRequest, request).scope)
            ):
                response = problem_response(400, "host not allowed", request_id=envelope.request_id)
            else:
                response = await self.get_response(request)
        except Exception:
            logger.exception("unhandled error", extra={"request_id": envelope.request_id})
            response = problem_response(
                500, "internal error", request_id=envelope.request_id, route=envelope.route_name
            )
        response.headers["X-Request-ID"] = envelope.request_id
        return response


class RouteMiddleware(AsyncMiddleware):
    """A matched request goes down its route's stack here; its errors become
    problem+json with the route named, and the headers its policies added
    (`RouteCall.answer_headers`) go on whatever the answer is."""

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        edge = cast(EdgeRequest, request)
        found, gateway = edge.envelope.found, edge.gateway
        if not isinstance(found, Match) or gateway is None:
            return await self.get_response(request)  # the views: unmatched, probes, docs
        envelope, route = edge.envelope, found.route.name
        call = open_call(envelope, found, edge.scope, request=edge)
        response: HttpResponseBase | None
        try:
            response = await gateway.handlers[route](call)
        except GatewayError as exc:
            response = error_response(exc, request_id=envelope.request_id, route=route)
        except (SuspiciousOperation, DjangoBadRequest) as exc:  # e.g. too many query fields
            error = BadRequest(str(exc) or "malformed request")
            response = error_response(error, request_id=envelope.request_id, route=route)
        except Exception:
            logger.exception(
                "unhandled error in route %s", route, extra={"request_id": envelope.request_id}
            )
            response = problem_response(
                500, "internal error", request_id=envelope.request_id, route=route
            )
        assert response is not None  # only a WebSocket pair is answered over the socket
        for name, value in call.answer_headers:
            if name == "Vary" and (vary := response.headers.get("Vary")):
                if value.lower() not in vary.lower():
                    response.headers["Vary"] = f"{vary}, {value}"
            else:
                response.headers[name] = value
        return response
