"""The ASGI entry for WebSocket handshakes (SPEC 3.11).

Django's handler serves HTTP only; a `websocket` scope comes here. The edge
does for a handshake what it does for an HTTP request (the envelope, the
Host check: gateway/edge/intake.py), then runs the route's stack, the same
one an HTTP request to the route runs (gateway/registry.py): the Origin
check when the route has CORS, auth and scopes, one rate-limit token,
request hooks, then the route's kind opens the upstream, accepts and relays
(gateway/pipeline/wsroute.py). Nothing of a policy is repeated here.

Every refusal is an HTTP answer with a problem+json body (the ASGI
WebSocket denial response, which uvicorn supports), so browsers and clients
see a real status instead of a bare 403. The access log gets one line when
the pair ends, with status 101, the messages each way, the close code and
which side closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from django.conf import settings

from gateway import serving
from gateway.edge.intake import (
    drop_underscore_headers,
    host_allowed,
    open_envelope,
    too_many_query_fields,
)
from gateway.edge.views import unmatched
from gateway.envelope import Envelope, open_call
from gateway.errors import BadRequest, GatewayError, Unavailable, error_body
from gateway.observe.accesslog import AccessLog
from gateway.observe.live import LIVE
from gateway.router import Match
from gateway.types import Receive, Scope, Send

__all__ = ["WebSocketEntry"]

logger = logging.getLogger("gateway")
_DENIAL = "websocket.http.response"
CLOSE_WAIT = 1.0


class WebSocketEntry:
    def __init__(self, access_log: AccessLog) -> None:
        self.access_log = access_log
        self.trusted = settings.TRUSTED_PROXIES
        self.drop_underscores = not settings.ALLOW_UNDERSCORE_HEADERS

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        if self.drop_underscores:
            drop_underscore_headers(scope)
        gateway = serving.current()
        envelope = open_envelope(scope, gateway, self.trusted)
        if (query := scope.get("query_string")) and (refusal := too_many_query_fields(query)):
            envelope.refused = refusal
        if (await receive())["type"] != "websocket.connect":
            return  # the client left before the handshake was handed over
        envelope.live = True
        LIVE.begin(envelope.route_name)
        status = 101
        try:
            if gateway is None or envelope.found is None:
                raise Unavailable("no routes are loaded")
            if not host_allowed(scope):
                raise BadRequest("host not allowed")
            found = envelope.found
            if not isinstance(found, Match):
                raise unmatched(found)
            if found.route.name not in gateway.handshakes:
                name = found.route.name
                raise BadRequest(f"route {name!r} does not accept WebSocket connections")
            call = open_call(envelope, found, scope, receive=receive, send=send)
            await gateway.handlers[found.route.name](call)
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
            envelope.answered()
            self.access_log.record(envelope, "GET", scope.get("path", ""), status, started)

    @staticmethod
    async def _refuse(
        scope: Scope, receive: Receive, send: Send, envelope: Envelope, error: GatewayError
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


async def _deny(scope: Scope, send: Send, envelope: Envelope, error: GatewayError) -> None:
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
