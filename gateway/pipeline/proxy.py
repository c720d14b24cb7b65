"""The handler of a proxy route: pass the request through, stream the answer
back (SPEC 3.2, 3.3).

Request bodies come from the handler's spooled file (memory up to 2.5 MiB, then
disk) and are streamed on in chunks; response bodies are streamed as they
arrive, raw (not decompressed). Neither is ever held whole in memory.
The route deadline bounds the wait for the upstream's response headers; while
the body streams, the upstream's `timeout` is an inactivity timeout per read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Mapping

import httpx
from django.http import StreamingHttpResponse

from .. import metrics
from ..config.model import Route, RouteTable
from ..context import BackendLog, GatewayRequest
from ..httpfast import Origin, build_request, send
from ..policy import credential_header_names, identity_header_names
from ..resilience import UpstreamGuard, backoff_delay, is_retryable_status
from ..router import Match
from .backend import classify_transport_error
from .outcome import Failure, failure_error
from .request import RenderInput, hop_by_hop_names, render_path

__all__ = ["ProxyHandler", "ProxyResponse"]

CHUNK = 64 * 1024
# Set by the gateway on the way in; a client's own copies never pass.
_OWNED_REQUEST = frozenset(
    {
        b"host",
        b"content-length",
        b"expect",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-request-id",
    }
)
# Set by the gateway (or its server) on the way out; like nginx, the upstream's
# Date and Server are not repeated.
_OWNED_RESPONSE = frozenset({b"x-request-id", b"date", b"server"})


class ProxyResponse(StreamingHttpResponse):
    """A streamed upstream answer. `raw_headers` keeps the upstream's headers
    as they came (repeated ones such as Set-Cookie included); the handler sends
    them after the ones middleware set on `headers`. `relay` is the
    transport's raw body stream: the handler sends it on chunk by chunk,
    without Django's and httpx's generator layers (`streaming_content` yields
    the same bytes, for anything else that reads the response)."""

    def __init__(self, upstream: httpx.Response, headers: list[tuple[bytes, bytes]]) -> None:
        super().__init__(self._relay(upstream), status=upstream.status_code)
        del self.headers["Content-Type"]  # Django's default; the upstream's is in raw_headers
        self.raw_headers = headers
        self.relay: AsyncIterable[bytes] = upstream.stream  # type: ignore[assignment]
        self._upstream = upstream

    @staticmethod
    async def _relay(upstream: httpx.Response) -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        finally:
            await upstream.aclose()

    async def aclose_upstream(self) -> None:
        await self._upstream.aclose()


class ProxyHandler:
    def __init__(
        self,
        route: Route,
        table: RouteTable,
        clients: Mapping[str, httpx.AsyncClient],
        guards: Mapping[str, UpstreamGuard],
    ) -> None:
        assert route.proxy is not None
        self.route = route
        self.template = route.proxy.path
        self.upstream = table.upstreams[route.proxy.upstream]
        self.client = clients[route.proxy.upstream]
        self.origin = Origin(self.upstream)
        self.guard = guards[route.proxy.upstream]
        self.backend_name = route.proxy.upstream
        self.static_headers = tuple(
            (n.encode(), v.encode("latin-1")) for n, v in self.upstream.headers
        )
        # Never from the client: what the gateway sets, forged identities, and
        # (unless settings.forward_headers names them) cookies and the
        # credential this route's auth consumed.
        named = {h.encode() for h in table.settings.forward_headers}
        optional = ({b"cookie"} | credential_header_names(route, table)) - named
        self.dropped = frozenset(
            _OWNED_REQUEST
            | identity_header_names(table)
            | optional
            | {n for n, _ in self.static_headers}
        )
        # With CORS the gateway owns Access-Control-*: the upstream's are dropped.
        self.drop_cors = route.cors is not None
        t = self.upstream.timeout
        self.timeouts = {"connect": t, "read": t, "write": t, "pool": t}

    async def __call__(self, request: GatewayRequest, match: Match) -> ProxyResponse:
        upstream = self.upstream
        values = RenderInput(match.params, match.path_params, {})
        path = upstream.base_path + render_path(self.template, values)
        # The client's query string goes on as it came (uvicorn hands it over raw).
        query = request.scope.get("query_string", b"").decode("latin-1")
        url = self.origin.url(path, query)
        incoming = request.scope["headers"]
        hop = hop_by_hop_names(incoming)
        dropped = self.dropped
        headers = [(n, v) for n, v in incoming if n not in dropped and n not in hop]
        ctx = request.gateway
        headers += [
            (b"x-request-id", ctx.request_id.encode()),
            (b"x-forwarded-for", ctx.forwarded_for.encode("latin-1")),
            (b"x-forwarded-proto", ctx.forwarded_proto.encode("latin-1")),
            (b"x-forwarded-host", ctx.forwarded_host.encode("latin-1")),
            *ctx.identity_headers,
            *self.static_headers,
        ]
        size: int = request.scope.get("gateway.body_size", 0)
        content: bytes | AsyncIterator[bytes] | None = None
        if size:
            content = request.read() if size <= CHUNK * 16 else _read_chunks(request)
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
        response = await self._send(outgoing, idempotent, request)
        hop_back = hop_by_hop_names(response.headers.raw)
        back = [
            (name, value)
            for name, value in ((n.lower(), v) for n, v in response.headers.raw)
            if name not in hop_back
            and name not in _OWNED_RESPONSE
            and not (self.drop_cors and name.startswith(b"access-control-"))
        ]
        return ProxyResponse(response, back)

    async def _send(
        self, outgoing: httpx.Request, idempotent: bool, request: GatewayRequest
    ) -> httpx.Response:
        """Until response headers: the circuit breaker, retries within the budget,
        all of it under the route deadline."""
        guard, breaker = self.guard, self.guard.breaker
        guard.budget.record_request()
        started = time.perf_counter()
        attempts, status, failure = 0, None, None
        try:
            async with asyncio.timeout(self.route.timeout):
                while True:
                    if breaker is not None and not breaker.allow():
                        failure = Failure.CIRCUIT_OPEN
                        break
                    attempts += 1
                    attempt_started = time.perf_counter()
                    response: httpx.Response | None = None
                    try:
                        response = await send(self.client, outgoing)
                        failure, status = None, response.status_code
                    except httpx.TransportError as exc:
                        failure, status = classify_transport_error(exc), None
                    except BaseException:
                        if breaker is not None:
                            breaker.release_trial()
                        raise
                    metrics.observe_upstream(guard.upstream, time.perf_counter() - attempt_started)
                    broken = failure is not None or (status or 0) >= 500
                    if breaker is not None:
                        breaker.record(success=not broken)
                    retry = failure is not None or is_retryable_status(status or 0)
                    if (
                        retry
                        and idempotent
                        and attempts < guard.retries.attempts
                        and guard.budget.try_retry()
                    ):
                        if response is not None:
                            await response.aclose()
                        await asyncio.sleep(backoff_delay(guard.retries.backoff, attempts))
                        continue
                    if response is not None:
                        self._log(request, status, started, attempts, "ok")
                        return response
                    break
        except TimeoutError:
            failure = Failure.TIMEOUT
        assert failure is not None
        self._log(request, status, started, attempts, failure.name.lower())
        raise failure_error(self.backend_name, failure, status=failure.route_status)

    def _log(
        self,
        request: GatewayRequest,
        status: int | None,
        started: float,
        attempts: int,
        outcome: str,
    ) -> None:
        metrics.observe_backend(self.route.name, self.backend_name, outcome)
        log = BackendLog(
            self.backend_name, status, time.perf_counter() - started, attempts, outcome
        )
        request.gateway.backends.append(log)


async def _read_chunks(request: GatewayRequest) -> AsyncIterator[bytes]:
    """The spooled body in chunks. Reads hit memory or the page cache; they are
    short enough to do on the loop, and a thread hop per chunk would cost more."""
    while chunk := request.read(CHUNK):
        yield chunk
