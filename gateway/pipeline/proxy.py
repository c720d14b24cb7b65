"""The handler of a proxy route: pass the request through, stream the answer
back (SPEC 3.2, 3.3).

Request bodies come from the handler's spooled file (memory up to 2.5 MiB, then
disk) and are streamed on in chunks; response bodies are streamed as they
arrive, raw (not decompressed, never given a Content-Length). Neither is ever
held whole in memory.

The route deadline bounds the wait for the upstream's response headers (the
upstream's `timeout` each attempt); once the body streams, only the proxy's
`idle_timeout` (default: the upstream's timeout) bounds the silence between
chunks, so event streams and long polls live as long as they talk (SPEC 3.11).
Event streams get `Cache-Control: no-cache` and `X-Accel-Buffering: no` unless
the upstream set its own, and end cleanly when the process drains.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator

import httpx

from gateway.envelope import BackendLog, GatewayRequest, MirrorCall, Primary, RouteCall
from gateway.errors import GatewayError, backend_error
from gateway.lifecycle import lifecycle
from gateway.observe import metrics
from gateway.observe.trace import CallTarget
from gateway.policies import cors
from gateway.policies.mirror.shadow import kept
from gateway.responses import RelayedResponse
from gateway.routes.model import Proxy, Route
from gateway.routes.openapi import Description
from gateway.routes.proxy import PROXY
from gateway.stack import BuildContext, Kind
from gateway.types import Failure
from gateway.upstream.attempts import Traced, call_guarded, is_retryable_status
from gateway.upstream.render import (
    RenderInput,
    hop_by_hop_names,
    render_path,
    upstream_headers,
)
from gateway.upstream.requests import (
    build_request,
    classify_transport_error,
    reserve_traceparent,
    retarget,
    send,
    set_traceparent,
)
from gateway.upstream.streams import Stream, open_stream, refusal
from gateway.upstream.targets import Steer, TargetState

__all__ = ["KIND", "ProxyHandler", "ProxyResponse"]

CHUNK = 64 * 1024
# Set by the gateway (or its server) on the way out; like nginx, the upstream's
# Date and Server are not repeated.
_OWNED_RESPONSE = frozenset({b"x-request-id", b"date", b"server"})
# Answers with no natural end: relayed until the process drains.
_OPEN_ENDED = (b"text/event-stream", b"application/x-ndjson")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ProxyResponse(RelayedResponse):
    """A streamed upstream answer. `raw_headers` keeps the upstream's headers as
    they came (repeated ones such as Set-Cookie included); `relay` is the
    transport's raw body stream, sent on chunk by chunk without Django's and
    httpx's generator layers."""

    def __init__(
        self,
        upstream: httpx.Response,
        headers: list[tuple[bytes, bytes]],
        *,
        open_ended: bool = False,
        stream: Stream | None = None,
        keep: asyncio.Future[Primary] | None = None,
    ) -> None:
        """`keep`: resolved with the status and the body once it has been
        relayed whole (mirror.compare), cancelled if it was not."""
        relay: AsyncIterable[bytes] = upstream.stream  # type: ignore[assignment]
        if keep is not None:
            relay = kept(relay, keep, upstream.status_code, upstream.headers.raw)
        self._upstream = upstream
        self._stream = stream  # the long-lived slot it holds (SPEC 3.10), given back at the end
        self._ended = False
        if open_ended:  # one generator layer more, for streams only
            relay = self._until_drained(relay)
            lifecycle.open_ended.add(self.end)
        super().__init__(upstream.status_code, headers, relay)

    def end(self) -> None:
        """Drain: close the upstream side; the relay then ends cleanly."""
        self._ended = True
        self._closing = asyncio.ensure_future(self._upstream.aclose())

    async def _until_drained(self, relay: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        try:
            async for chunk in relay:
                yield chunk
        except httpx.TransportError:
            if not self._ended:
                raise

    async def aclose_upstream(self) -> None:
        lifecycle.open_ended.discard(self.end)
        if self._stream is not None:
            self._stream.close()
        await self._upstream.aclose()

    def why_cut(self, error: Exception) -> tuple[str, str]:
        if isinstance(error, httpx.ReadTimeout):
            return "idle_timeout", "the upstream sent nothing for the route's idle_timeout"
        return "upstream_failed", f"the upstream's answer broke off: {error}"


class ProxyHandler:
    def __init__(self, route: Route, context: BuildContext) -> None:
        proxy = route.kind
        assert isinstance(proxy, Proxy)
        self.route = route
        self.template = proxy.path
        self.upstream = context.table.upstreams[proxy.upstream]
        self.client = context.clients[proxy.upstream]
        self.guard = context.guards[proxy.upstream]
        # Requests are built for the first target; an attempt elsewhere retargets.
        self.origin = self.guard.balancer.states[0].origin
        self.client_streams = context.runtime.client_streams
        self.streams_per_client = context.table.settings.max_streams_per_client
        self.backend_name = proxy.upstream
        self.static_headers = upstream_headers(self.upstream)
        self.dropped = context.not_relayed(route, self.static_headers)
        # With CORS the gateway owns Access-Control-*: the upstream's are dropped.
        self.drop_cors = cors.OPTION.of(route) is not None
        t = self.upstream.timeout
        idle = proxy.idle_timeout or t
        self.timeouts = {"connect": t, "read": t, "write": t, "pool": t, "body": idle}
        self.traced: dict[str, Traced[httpx.Response | Failure]] = {}

    async def __call__(self, call: RouteCall) -> ProxyResponse:
        request, match, envelope = call.http, call.match, call.envelope
        upstream = self.upstream
        values = RenderInput(match.params, match.path_params, {})
        rendered = render_path(self.template, values)
        path = upstream.base_path + rendered
        # The client's query string goes on as it came (uvicorn hands it over raw).
        query = request.scope.get("query_string", b"").decode("latin-1")
        url = self.origin.url(path, query)
        incoming = request.scope["headers"]
        hop = hop_by_hop_names(incoming)
        dropped = self.dropped
        headers = [(n, v) for n, v in incoming if n not in dropped and n not in hop]
        headers += envelope.gateway_headers()
        headers += self.static_headers
        if (edits := envelope.upstream_edits) is not None:  # request hooks
            headers = edits.apply(headers)
        size = envelope.body_size
        tap = envelope.mirror  # sampled for mirroring: its body (at most max_body) is read whole
        content: bytes | AsyncIterator[bytes] | None = None
        if size:
            whole = size <= CHUNK * 16 or tap is not None
            content = request.read() if whole else _read_chunks(request)
        outgoing = build_request(
            request.method or "GET",
            url,
            self.origin.host_header,
            headers,
            content,
            content_length=size,
            extensions={"timeout": self.timeouts},
        )
        # Retried only when nothing of a body has been sent: GET and HEAD without one.
        idempotent = request.method in ("GET", "HEAD") and not size
        client = envelope.identity_key or envelope.client
        if _asks_for_a_stream(request):  # refused before the upstream is asked, if full
            error = refusal(
                self.guard.streams, self.client_streams, client, self.streams_per_client
            )
            if error is not None:
                raise error
        primary: asyncio.Future[Primary] | None = None
        if tap is not None:  # mirrored, even when the primary fails (compared: no answer)
            if tap.compare:
                primary = asyncio.get_running_loop().create_future()
            body = content if isinstance(content, bytes) else None
            method = request.method or "GET"
            tap.calls.append(MirrorCall(method, rendered, query, headers, body, primary))
        steer = self.guard.steer(envelope.client, envelope.identity_key, incoming)
        try:
            return await self._answer(call, outgoing, idempotent, steer, client, primary)
        except BaseException as exc:
            if primary is not None and not primary.done():
                if isinstance(exc, GatewayError):
                    primary.set_result((None, None))  # compared: the primary had no answer
                else:
                    primary.cancel()  # cancelled: nothing to compare with
            raise

    async def _answer(
        self,
        call: RouteCall,
        outgoing: httpx.Request,
        idempotent: bool,
        steer: Steer | None,
        client: str,
        primary: asyncio.Future[Primary] | None,
    ) -> ProxyResponse:
        """The upstream's answer, as the client gets it (`primary`: kept as it
        is relayed, for a mirror's comparison)."""
        response = await self._send(outgoing, idempotent, call, steer)
        hop_back = hop_by_hop_names(response.headers.raw)
        if response.status_code in (204, 304):
            # No body follows whatever a Content-Length says (a 304's describes
            # the representation): the server would wait for one.
            hop_back = hop_back | {b"content-length"}
        back = [
            (name, value)
            for name, value in ((n.lower(), v) for n, v in response.headers.raw)
            if name not in hop_back
            and name not in _OWNED_RESPONSE
            and not (self.drop_cors and name.startswith(b"access-control-"))
        ]
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower().encode()
        stream = None
        if kind in _OPEN_ENDED:  # long-lived: it holds a stream slot (SPEC 3.10)
            try:
                stream = open_stream(
                    self.guard.streams, self.client_streams, client, self.streams_per_client
                )
            except GatewayError:
                await response.aclose()
                raise
        if kind == b"text/event-stream":
            names = {name for name, _ in back}
            if b"cache-control" not in names:
                back.append((b"cache-control", b"no-cache"))
            if b"x-accel-buffering" not in names:
                back.append((b"x-accel-buffering", b"no"))
        return ProxyResponse(
            response, back, open_ended=stream is not None, stream=stream, keep=primary
        )

    async def _send(
        self, outgoing: httpx.Request, idempotent: bool, call: RouteCall, steer: Steer | None
    ) -> httpx.Response:
        """Until response headers: `call_guarded` (the target, its circuit
        breaker, retries within the budget), all of it under the route deadline."""
        attempts, status = 0, None  # the last answer's status, for the log
        origin = self.origin

        async def attempt(
            traceparent: bytes | None, target: TargetState
        ) -> httpx.Response | Failure:
            nonlocal attempts, status, origin
            attempts += 1
            if target.origin is not origin:
                origin = target.origin
                retarget(outgoing, origin)
            if traceparent is not None and slot is not None:
                set_traceparent(outgoing, slot, traceparent)
            try:
                response = await send(self.client, outgoing)
            except httpx.TransportError as exc:
                status = None
                return classify_transport_error(exc)
            status = response.status_code
            return response

        trace, traced, slot = call.envelope.trace, None, None
        if trace is not None:
            traced = self.traced.get(outgoing.method) or self._traced(outgoing.method)
            slot = reserve_traceparent(outgoing)
        started = time.perf_counter()
        result: httpx.Response | Failure | None
        try:
            async with asyncio.timeout_at(call.deadline):
                result = await call_guarded(
                    self.guard,
                    attempt,
                    _judge,
                    idempotent=idempotent,
                    discard=_discard,
                    trace=trace,
                    traced=traced,
                    steer=steer,
                )
        except TimeoutError:
            result = Failure.TIMEOUT
        if isinstance(result, httpx.Response):
            self._log(call, status, started, attempts, "ok")
            return result
        failure = Failure.CIRCUIT_OPEN if result is None else result
        self._log(call, status, started, attempts, failure.name.lower())
        raise backend_error(self.backend_name, failure, status=failure.route_status)

    def _traced(self, method: str) -> Traced[httpx.Response | Failure]:
        """The CLIENT span's fixed attributes for one method (kept for the
        methods HTTP defines; any other is made per request)."""
        upstream = self.upstream
        target = CallTarget(self.backend_name, upstream.host, upstream.port, method)
        traced = Traced(target, _describe)
        if method in _METHODS:
            self.traced[method] = traced
        return traced

    def _log(
        self,
        call: RouteCall,
        status: int | None,
        started: float,
        attempts: int,
        outcome: str,
    ) -> None:
        metrics.observe_backend(self.route.name, self.backend_name, outcome)
        log = BackendLog(
            self.backend_name, status, time.perf_counter() - started, attempts, outcome
        )
        call.envelope.log.backends.append(log)


def _describe(result: httpx.Response | Failure) -> tuple[int | None, bool]:
    """For the attempt's span: the status, and whether it failed (no answer, or
    4xx/5xx, as OpenTelemetry's HTTP client conventions have it)."""
    if isinstance(result, Failure):
        return None, True
    return result.status_code, result.status_code >= 400


def _judge(result: httpx.Response | Failure) -> tuple[bool, bool]:
    """(the upstream failed, worth retrying) for the circuit breaker and retries."""
    if isinstance(result, Failure):
        return True, True
    return result.status_code >= 500, is_retryable_status(result.status_code)


async def _discard(result: httpx.Response | Failure) -> None:
    if isinstance(result, httpx.Response):
        await result.aclose()


def _asks_for_a_stream(request: GatewayRequest) -> bool:
    accept = request.META.get("HTTP_ACCEPT")
    return accept is not None and ("text/event-stream" in accept or "x-ndjson" in accept)


async def _read_chunks(request: GatewayRequest) -> AsyncIterator[bytes]:
    """The spooled body in chunks. Reads hit memory or the page cache; they are
    short enough to do on the loop, and a thread hop per chunk would cost more."""
    while chunk := request.read(CHUNK):
        yield chunk


def describe(route: Route, description: Description) -> None:
    description.ok["description"] = "The upstream's answer, as it came"
    description.ok_content["*/*"] = {"schema": {}}
    description.responses["default"] = {"description": "The upstream's answer, whatever its status"}
    description.request_body = {
        "description": "Passed to the upstream as it came",
        "content": {"*/*": {"schema": {}}},
    }


KIND = Kind(reader=PROXY, build=ProxyHandler, describe=describe)
