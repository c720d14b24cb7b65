"""The handler of a WebSocket route (SPEC 3.11).

A plain request (no upgrade) is answered `426` with `Upgrade: websocket`. A
handshake reaches `connect` once the edge has run the route's policies (auth,
scopes, one rate-limit token, the Origin check): it opens the upstream
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
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.http.response import HttpResponseBase

from gateway.envelope import BackendLog, Envelope, GatewayRequest
from gateway.errors import UpgradeRequired
from gateway.observe import metrics
from gateway.observe.trace import CallTarget
from gateway.pipeline.failures import Failure, failure_error
from gateway.pipeline.hooks import remaining
from gateway.pipeline.relay import Relay, RelayLog
from gateway.router import Match
from gateway.routes.model import Route, WebSocket
from gateway.upstream.attempts import Traced, call_guarded, is_retryable_status
from gateway.upstream.render import (
    RenderInput,
    gateway_headers,
    hop_by_hop_names,
    render_path,
    upstream_headers,
)
from gateway.upstream.streams import open_stream
from gateway.upstream.websocket import HandshakeFailed, open_websocket, websocket_url
from gateway.upstream.wsconnection import UpstreamSocket

if TYPE_CHECKING:
    from gateway.pipeline import Parts

__all__ = ["WebSocketRoute", "build_websocket"]

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


def build_websocket(route: Route, spec: WebSocket, parts: Parts) -> WebSocketRoute:
    return WebSocketRoute(route, spec, parts)


class WebSocketRoute:
    def __init__(self, route: Route, spec: WebSocket, parts: Parts) -> None:
        self.route = route
        self.spec = spec
        self.upstream = parts.table.upstreams[spec.upstream]
        self.guard = parts.guards[spec.upstream]
        self.client_streams = parts.runtime.client_streams
        self.send_timeout = settings.CLIENT_SEND_TIMEOUT
        self.streams_per_client = parts.table.settings.max_streams_per_client
        self.traced = Traced(
            CallTarget(spec.upstream, self.upstream.host, self.upstream.port, "GET"), _describe
        )
        self.static_headers = upstream_headers(self.upstream)
        self.dropped = parts.not_relayed(route, self.static_headers) | _HANDSHAKE
        self.allowed = frozenset(spec.subprotocols) if spec.subprotocols is not None else None

    async def __call__(self, request: GatewayRequest, match: Match) -> HttpResponseBase:
        raise UpgradeRequired()

    async def connect(
        self,
        envelope: Envelope,
        match: Match,
        scope: dict[str, Any],
        receive: Any,
        send: Any,
        accept_headers: list[tuple[bytes, bytes]],
    ) -> RelayLog:
        """Open the upstream, accept the client, relay until either side ends.
        Raises a GatewayError (nothing sent yet) when the upstream refuses,
        or when the upstream's or the client's streams are used up."""
        client = envelope.identity_key or envelope.client
        stream = open_stream(
            self.guard.streams, self.client_streams, client, self.streams_per_client
        )
        try:
            return await self._relay(envelope, match, scope, receive, send, accept_headers)
        finally:
            stream.close()

    async def _relay(
        self,
        envelope: Envelope,
        match: Match,
        scope: dict[str, Any],
        receive: Any,
        send: Any,
        accept_headers: list[tuple[bytes, bytes]],
    ) -> RelayLog:
        upstream = await self._open(envelope, match, scope)
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
                envelope.cut = log.cut
                logger.info(
                    "answer cut off (%s): the client read nothing for %g s",
                    log.cut,
                    self.send_timeout,
                    extra={"request_id": envelope.request_id, "route": self.route.name},
                )
            return log
        finally:
            gauge.dec()

    async def _open(
        self, envelope: Envelope, match: Match, scope: dict[str, Any]
    ) -> UpstreamSocket:
        values = RenderInput(match.params, match.path_params, {})
        path = self.upstream.base_path + render_path(self.spec.path, values)
        url = websocket_url(self.upstream, path, scope.get("query_string", b"").decode("latin-1"))
        incoming = scope["headers"]
        hop, dropped = hop_by_hop_names(incoming), self.dropped
        raw = [(n, v) for n, v in incoming if n not in dropped and n not in hop]
        raw += gateway_headers(envelope)
        raw += self.static_headers
        if envelope.upstream_edits is not None:  # request hooks
            raw = envelope.upstream_edits.apply(raw)
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw]
        offered: list[str] = scope.get("subprotocols") or []
        if self.allowed is not None:
            offered = [p for p in offered if p in self.allowed]
        timeout = self.upstream.timeout
        attempts, status = 0, None

        async def attempt(traceparent: bytes | None) -> UpstreamSocket | HandshakeFailed:
            nonlocal attempts, status
            attempts += 1
            sent = headers
            if traceparent is not None:
                sent = [*headers, ("traceparent", traceparent.decode())]
            result = await open_websocket(
                url, sent, offered, max_size=self.spec.max_message_size, open_timeout=timeout
            )
            status = result.status if isinstance(result, HandshakeFailed) else 101
            return result

        started = time.perf_counter()
        result: UpstreamSocket | HandshakeFailed | None
        try:
            async with asyncio.timeout(remaining(envelope, self.route.timeout)):
                result = await call_guarded(
                    self.guard,
                    attempt,
                    _judge,
                    idempotent=True,
                    trace=envelope.trace,
                    traced=self.traced,
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
        raise failure_error(self.spec.upstream, failure, status=route_status)

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
        envelope.backends.append(
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
