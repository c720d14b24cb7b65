"""The ASGI entry for WebSocket handshakes (SPEC 3.11).

Django's handler serves HTTP only; a `websocket` scope comes here. Before
anything is upgraded, and before the upstream is contacted, the handshake
goes through what an HTTP request would: the envelope (route match, client
address, request id, credentials taken out of the query), the Host check, the
route's kind, the Origin check when the route has CORS, auth and scopes, one
rate-limit token. Every refusal is an HTTP answer with a problem+json body
(the ASGI WebSocket denial response, which uvicorn supports), so browsers
and clients see a real status instead of a bare 403. Then the route's handler
opens the upstream, accepts and relays (gateway/pipeline/websocket.py); the
access log gets one line when the pair ends, with status 101, the messages
each way, the close code and which side closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from gateway import registry
from gateway.edge.context import open_envelope
from gateway.edge.intake import drop_underscore_headers, too_many_query_fields
from gateway.edge.views import unmatched
from gateway.envelope import Envelope
from gateway.errors import BadRequest, GatewayError, Unavailable, error_body
from gateway.observe.accesslog import AccessLog
from gateway.observe.live import LIVE
from gateway.pipeline.hooks import run_request_hooks
from gateway.pipeline.websocket import WebSocketRoute
from gateway.policies.auth.middleware import admit
from gateway.policies.cors import admit_origin
from gateway.policies.ratelimit.middleware import take_token
from gateway.router import Match

__all__ = ["WebSocketEntry"]

logger = logging.getLogger("gateway")
_DENIAL = "websocket.http.response"
CLOSE_WAIT = 1.0


class WebSocketEntry:
    def __init__(self, access_log: AccessLog) -> None:
        self.access_log = access_log
        self.trusted = settings.TRUSTED_PROXIES
        self.allowed_hosts = list(settings.ALLOWED_HOSTS)
        self.drop_underscores = not settings.ALLOW_UNDERSCORE_HEADERS

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = time.perf_counter()
        if self.drop_underscores:
            drop_underscore_headers(scope)
        envelope = open_envelope(scope, registry.current(), self.trusted)
        if (query := scope.get("query_string")) and (refusal := too_many_query_fields(query)):
            envelope.refused = refusal
        if (await receive())["type"] != "websocket.connect":
            return  # the client left before the handshake was handed over
        envelope.live = True
        LIVE.begin(envelope.route_name)
        status = 101
        try:
            route, match = self._route(envelope, scope)
            headers = scope["headers"]
            await admit(envelope, headers)
            accept = [(b"x-request-id", envelope.request_id.encode())]
            rate = await take_token(envelope, headers)
            accept += [(k.lower().encode(), v.encode()) for k, v in rate.items()]
            if envelope.policy is not None and envelope.policy.request_hooks:
                await run_request_hooks(
                    envelope.policy.request_hooks,
                    envelope,
                    scope,
                    match.params,
                    match.route.timeout,
                )
            envelope.websocket = await route.connect(envelope, match, scope, receive, send, accept)
        except GatewayError as exc:
            status = exc.status
            await self._refuse(scope, receive, send, envelope, exc)
        except Exception:
            logger.exception(
                "unhandled error in route %s",
                envelope.route_name,
                extra={"request_id": envelope.request_id},
            )
            status = 500
            await self._refuse(scope, receive, send, envelope, GatewayError("internal error"))
        finally:
            self.access_log.record(envelope, "GET", scope.get("path", ""), status, started)

    def _route(self, envelope: Envelope, scope: dict[str, Any]) -> tuple[WebSocketRoute, Match]:
        """The WebSocket route this handshake is for, or the refusal."""
        found, gateway = envelope.found, envelope.gateway
        if gateway is None or found is None:
            raise Unavailable("no routes are loaded")
        if "*" not in self.allowed_hosts:
            host = next((v for n, v in scope["headers"] if n == b"host"), b"").decode("latin-1")
            domain, _ = split_domain_port(host)
            if not domain or not validate_host(domain, self.allowed_hosts):
                raise BadRequest("host not allowed")
        if not isinstance(found, Match):
            raise unmatched(found)
        if envelope.refused is not None:
            raise envelope.refused
        route = gateway.handlers[found.route.name]
        if not isinstance(route, WebSocketRoute):
            raise BadRequest(f"route {found.route.name!r} does not accept WebSocket connections")
        if envelope.policy is not None:
            origin = next((v for n, v in scope["headers"] if n == b"origin"), None)
            admit_origin(envelope.policy.cors, origin.decode("latin-1") if origin else None)
        return route, found

    @staticmethod
    async def _refuse(
        scope: dict[str, Any], receive: Any, send: Any, envelope: Envelope, error: GatewayError
    ) -> None:
        """The refusal as an HTTP answer; a server without the denial
        extension can only close (its 403). Nothing to do if the client left."""
        with contextlib.suppress(OSError, RuntimeError):
            await _deny(scope, send, envelope, error)
        # Return once the server has closed the connection: uvicorn reports an
        # application that returns before then as one that never answered.
        with contextlib.suppress(TimeoutError, OSError, RuntimeError):
            async with asyncio.timeout(CLOSE_WAIT):
                for _ in range(2):  # a disconnect for the refusal, one for the socket
                    await receive()


async def _deny(scope: dict[str, Any], send: Any, envelope: Envelope, error: GatewayError) -> None:
    if _DENIAL not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    body = error_body(error, request_id=envelope.request_id, route=envelope.route_name)
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", envelope.request_id.encode()),
        *((k.lower().encode(), v.encode("latin-1")) for k, v in error.headers.items()),
    ]
    await send(
        {"type": "websocket.http.response.start", "status": error.status, "headers": headers}
    )
    await send({"type": "websocket.http.response.body", "body": body})
