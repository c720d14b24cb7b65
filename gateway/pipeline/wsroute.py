"""The handler of a WebSocket route (SPEC 3.11).

A plain request (no upgrade) is answered `426` with `Upgrade: websocket`. A
handshake reaches it once the route's stack has run its policies (the Origin
check, auth and scopes, one rate-limit token, request hooks): it opens the upstream
WebSocket through the upstream's guard (circuit breaker, retries within the
budget) under the route deadline, each attempt bounded by the upstream's
timeout, and accepts the client only once the upstream has accepted, with the
subprotocol the upstream chose. A refusal raises, before the upgrade: the
upstream's 4xx, 502 when it cannot be reached or answers otherwise, 503 when
its circuit is open, 504 on a timeout. Then the pair is relayed (relay.py).

Headers to the upstream follow the proxy routes' rules (SPEC 3.2, 3.3): the
client's end-to-end headers minus what the gateway owns, identity headers and
X-Forwarded-* from the gateway, the upstream's static headers. The
handshake's own headers (Sec-WebSocket-*) are the library's to set; the
client's offered subprotocols go on filtered by the route's `subprotocols`.
"""

from __future__ import annotations

import asyncio
import logging
import time

from django.conf import settings

from gateway.envelope import BackendLog, Envelope, RelayLog, RouteCall
from gateway.errors import UpgradeRequired, backend_error
from gateway.observe import metrics
from gateway.observe.trace import CallTarget
from gateway.pipeline.relay import Relay
from gateway.routes.model import Route, WebSocket
from gateway.routes.openapi import Description
from gateway.routes.wsroute import WEBSOCKET
from gateway.stack import BuildContext, Kind
from gateway.types import Failure
from gateway.upstream.attempts import Traced, call_guarded, is_retryable_status
from gateway.upstream.render import (
    RenderInput,
    hop_by_hop_names,
    render_path,
    upstream_headers,
)
from gateway.upstream.streams import open_stream
from gateway.upstream.targets import TargetState
from gateway.upstream.wsconnection import UpstreamSocket
from gateway.upstream.wsopen import HandshakeFailed, open_websocket, websocket_url

__all__ = ["KIND", "WebSocketRoute"]

logger = logging.getLogger("gateway")

# The handshake's own headers: the library sets them for the upstream hop.
_HANDSHAKE = frozenset(
    {
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
        b"sec-websocket-accept",
    }
)


class WebSocketRoute:
    def __init__(self, route: Route, context: BuildContext) -> None:
        spec = route.kind
        assert isinstance(spec, WebSocket)
        self.route = route
        self.spec = spec
        self.upstream = context.table.upstreams[spec.upstream]
        self.guard = context.guards[spec.upstream]
        self.client_streams = context.runtime.client_streams
        self.send_timeout = settings.CLIENT_SEND_TIMEOUT
        self.streams_per_client = context.table.settings.max_streams_per_client
        self.traced = Traced(
            CallTarget(spec.upstream, self.upstream.host, self.upstream.port, "GET"), _describe
        )
        self.static_headers = upstream_headers(self.upstream)
        self.dropped = context.not_relayed(route, self.static_headers) | _HANDSHAKE
        self.allowed = frozenset(spec.subprotocols) if spec.subprotocols is not None else None

    async def __call__(self, call: RouteCall) -> None:
        """Open the upstream, accept the client, relay until either side ends.
        Raises a GatewayError (nothing sent yet) when the upstream refuses,
        or when the upstream's or the client's streams are used up; a plain
        request gets 426."""
        if call.request is not None:
            raise UpgradeRequired()
        envelope = call.envelope
        client = envelope.identity_key or envelope.client
        stream = open_stream(
            self.guard.streams, self.client_streams, client, self.streams_per_client
        )
        try:
            envelope.log.websocket = await self._relay(call)
        finally:
            stream.close()

    async def _relay(self, call: RouteCall) -> RelayLog:
        envelope, receive, send = call.envelope, call.receive, call.send
        assert receive is not None and send is not None  # a handshake's
        accept_headers = [(b"x-request-id", envelope.request_id.encode())]
        accept_headers += [(k.lower().encode(), v.encode()) for k, v in call.answer_headers]
        upstream = await self._open(call)
        gauge, to_upstream, to_client = metrics.websocket_counters(self.route.name)
        try:
            await send(
                {
                    "type": "websocket.accept",
                    "subprotocol": upstream.subprotocol,
                    "headers": accept_headers,
                }
            )
        except BaseException:
            upstream.transport.abort()
            raise
        gauge.inc()
        try:
            relay = Relay(
                receive,
                send,
                upstream,
                max_size=self.spec.max_message_size,
                idle_timeout=self.spec.idle_timeout,
                counters=(to_upstream, to_client),
                send_timeout=self.send_timeout,
            )
            log = await relay.run()
            if log.cut is not None:
                logger.info(
                    "answer cut off (%s): the client read nothing for %g s",
                    log.cut,
                    self.send_timeout,
                    extra={"request_id": envelope.request_id, "route": self.route.name},
                )
            return log
        finally:
            gauge.dec()

    async def _open(self, call: RouteCall) -> UpstreamSocket:
        envelope, match, scope = call.envelope, call.match, call.scope
        values = RenderInput(match.params, match.path_params, {})
        path = self.upstream.base_path + render_path(self.spec.path, values)
        query = scope.get("query_string", b"").decode("latin-1")
        incoming = scope["headers"]
        steer = self.guard.steer(envelope.client, envelope.identity_key, incoming)
        hop, dropped = hop_by_hop_names(incoming), self.dropped
        raw = [(n, v) for n, v in incoming if n not in dropped and n not in hop]
        raw += envelope.gateway_headers()
        raw += self.static_headers
        if envelope.upstream_edits is not None:  # request hooks
            raw = envelope.upstream_edits.apply(raw)
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw]
        offered: list[str] = scope.get("subprotocols") or []
        if self.allowed is not None:
            offered = [p for p in offered if p in self.allowed]
        timeout = self.upstream.timeout
        attempts, status = 0, None

        async def attempt(
            traceparent: bytes | None, target: TargetState
        ) -> UpstreamSocket | HandshakeFailed:
            nonlocal attempts, status
            attempts += 1
            url = websocket_url(self.upstream, target.target, path, query)
            sent = headers
            if traceparent is not None:
                sent = [*headers, ("traceparent", traceparent.decode())]
            result = await open_websocket(
                url,
                sent,
                offered,
                max_size=self.spec.max_message_size,
                open_timeout=timeout,
                tls=self.upstream.tls,
            )
            status = result.status if isinstance(result, HandshakeFailed) else 101
            return result

        started = time.perf_counter()
        result: UpstreamSocket | HandshakeFailed | None
        try:
            async with asyncio.timeout_at(call.deadline):
                result = await call_guarded(
                    self.guard,
                    attempt,
                    _judge,
                    idempotent=True,
                    trace=envelope.trace,
                    traced=self.traced,
                    steer=steer,
                )
        except TimeoutError:
            result = HandshakeFailed(Failure.TIMEOUT)
        failure = Failure.CIRCUIT_OPEN if result is None else None
        if isinstance(result, HandshakeFailed):
            failure = result.failure
        self._log(envelope, status, started, attempts, failure)
        if failure is None:
            assert isinstance(result, UpstreamSocket)
            return result
        route_status = failure.route_status
        if failure is Failure.STATUS and status is not None and 400 <= status < 500:
            route_status = status
        raise backend_error(self.spec.upstream, failure, status=route_status)

    def _log(
        self,
        envelope: Envelope,
        status: int | None,
        started: float,
        attempts: int,
        failure: Failure | None,
    ) -> None:
        outcome = "ok" if failure is None else failure.name.lower()
        metrics.observe_backend(self.route.name, self.spec.upstream, outcome)
        envelope.log.backends.append(
            BackendLog(self.spec.upstream, status, time.perf_counter() - started, attempts, outcome)
        )


def _describe(result: UpstreamSocket | HandshakeFailed) -> tuple[int | None, bool]:
    """For the handshake's span: the status (101 when it was accepted), and
    whether it failed."""
    if isinstance(result, HandshakeFailed):
        return result.status, True
    return 101, False


def _judge(result: UpstreamSocket | HandshakeFailed) -> tuple[bool, bool]:
    """(the upstream failed, worth retrying), for the breaker and retries."""
    if not isinstance(result, HandshakeFailed):
        return False, False
    if result.failure is Failure.STATUS and result.status is not None:
        return result.status >= 500, is_retryable_status(result.status)
    return True, result.failure in (Failure.CONNECT, Failure.TIMEOUT)


def describe(route: Route, description: Description) -> None:
    spec = route.kind
    assert isinstance(spec, WebSocket)
    if spec.subprotocols is not None:
        description.listing["subprotocols"] = list(spec.subprotocols)


def _max_message_size(route: Route) -> int:
    assert isinstance(route.kind, WebSocket)
    return route.kind.max_message_size


KIND = Kind(
    reader=WEBSOCKET,
    build=WebSocketRoute,
    describe=describe,
    handshakes=True,
    operations=False,
    max_message_size=_max_message_size,
)
