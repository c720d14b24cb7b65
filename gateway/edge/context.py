"""First middleware: request ID, client address, Host check, and the last-chance
error net, so every response carries X-Request-ID and none shows a traceback."""

from __future__ import annotations

import logging
from typing import cast

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from gateway.edge.middleware import AsyncMiddleware, GetResponse
from gateway.envelope import GatewayRequest, RequestContext, make_request_id, resolve_client
from gateway.errors import problem_response
from gateway.router import Match

__all__ = ["RequestContextMiddleware"]

logger = logging.getLogger("gateway")
_PROBES = frozenset({"/healthz", "/readyz"})


class RequestContextMiddleware(AsyncMiddleware):
    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        self.trusted = settings.TRUSTED_PROXIES
        self.check_host = "*" not in settings.ALLOWED_HOSTS

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request = cast(GatewayRequest, request)
        meta = request.META
        address = resolve_client(
            meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_FOR"), self.trusted
        )
        proto = request.scope.get("scheme", "http")
        host = meta.get("HTTP_HOST", "")
        if address.via_trusted_proxy:
            proto = meta.get("HTTP_X_FORWARDED_PROTO", "").split(",")[0].strip() or proto
            host = meta.get("HTTP_X_FORWARDED_HOST", "").split(",")[0].strip() or host
        found = request.scope.get("gateway.match")
        state = request.scope.get("gateway.state")
        ctx = RequestContext(
            request_id=make_request_id(meta.get("HTTP_X_REQUEST_ID")),
            client=address.client,
            forwarded_for=address.forwarded_for,
            forwarded_proto=proto,
            forwarded_host=host,
            route=found.route.name if isinstance(found, Match) else None,
        )
        if isinstance(found, Match) and state is not None:
            ctx.policy = state.policies[found.route.name]
        request.gateway = ctx
        try:
            if self.check_host and request.path not in _PROBES:
                request.get_host()
            response = await self.get_response(request)
        except DisallowedHost:
            response = problem_response(400, "host not allowed", request_id=ctx.request_id)
        except Exception:
            logger.exception("unhandled error", extra={"request_id": ctx.request_id})
            response = problem_response(
                500, "internal error", request_id=ctx.request_id, route=ctx.route
            )
        response.headers["X-Request-ID"] = ctx.request_id
        return response
