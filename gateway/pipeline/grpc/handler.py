"""The handler of a `grpc` route: one call relayed to the upstream over
HTTP/2 (gateway/upstream/h2client.py), its messages and metadata unchanged.

- native gRPC (HTTP/2 clients): the request's messages go on as they came;
  the answer's head, messages and trailers come back as the upstream sent
  them (a trailers-only answer becomes a head, then its trailers);
- gRPC-Web (gateway/pipeline/grpc/web.py): translated both ways.

Native gRPC requests (HTTP/2) are sent on as they come (the edge's
BodyPump, gateway/bodypump.py): client-streaming and bidirectional calls
keep the request open while answers flow back, each side as fast as the
other reads. Past `max_body_size` in all, the call ends RESOURCE_EXHAUSTED.
gRPC-Web requests (no full duplex in browsers) are read whole first.

The call's deadline is the route's `timeout`, or the client's
`grpc-timeout` when it is shorter; the upstream gets the time left as its
own `grpc-timeout`. Past it the call ends with DEADLINE_EXCEEDED, whether
the upstream had answered yet or was still streaming.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from gateway.bodypump import BodyPump
from gateway.envelope import BackendLog, RouteCall
from gateway.errors import (
    BadRequest,
    GatewayError,
    PayloadTooLarge,
    UnsupportedMediaType,
    backend_error,
)
from gateway.observe import metrics
from gateway.observe.trace import CallTarget
from gateway.pipeline.grpc import status as grpc
from gateway.pipeline.grpc.response import GrpcResponse, status_of
from gateway.pipeline.grpc.web import (
    TextEncoder,
    decode_text,
    trailer_frame,
    upstream_type,
    web_mode,
)
from gateway.routes.model import Grpc, Route
from gateway.stack import BuildContext
from gateway.types import Failure
from gateway.upstream.attempts import Traced, call_guarded
from gateway.upstream.h2client import H2Call, H2Client, H2Failure, upstream_client
from gateway.upstream.render import hop_by_hop_names, upstream_headers
from gateway.upstream.targets import TargetState

__all__ = ["GrpcHandler"]

# Set by the gateway for the upstream (or meaningless past it).
_NOT_RELAYED = frozenset(
    {b"host", b"content-length", b"content-type", b"te", b"grpc-timeout", b"x-grpc-web"}
)
# Never passed back from the upstream's head.
_NOT_RETURNED = frozenset({b"content-length", b"x-request-id", b"date", b"server"})


class GrpcHandler:
    def __init__(self, route: Route, context: BuildContext) -> None:
        kind = route.kind
        assert isinstance(kind, Grpc)
        self.route = route
        self.service = kind.service
        self.backend = kind.upstream
        self.upstream = upstream = context.table.upstreams[kind.upstream]
        self.guard = context.guards[kind.upstream]
        self.client: H2Client = context.runtime.keep(
            ("h2", upstream.connection_key), lambda: upstream_client(upstream)
        )
        self.static_headers = [(n.lower(), v) for n, v in upstream_headers(upstream)]
        self.dropped = context.not_relayed(route, self.static_headers) | _NOT_RELAYED
        self.scheme = upstream.scheme.encode()
        self.traced = Traced(
            CallTarget(kind.upstream, upstream.host, upstream.port, "POST", kind.service), _describe
        )

    async def __call__(self, call: RouteCall) -> GrpcResponse:
        request, envelope = call.http, call.envelope
        scope = request.scope
        incoming: list[tuple[bytes, bytes]] = scope["headers"]
        content_type = next((v for n, v in incoming if n == b"content-type"), b"")
        web = web_mode(content_type)
        if web is None:
            if not content_type.lower().startswith(b"application/grpc"):
                raise UnsupportedMediaType(
                    "a gRPC route takes application/grpc or gRPC-Web requests"
                )
            if scope.get("http_version") != "2":
                raise BadRequest("gRPC needs HTTP/2 (browsers: gRPC-Web)")
        pump = envelope.body_pump  # native gRPC over HTTP/2: the body as it comes
        body = request.read() if pump is None else b""
        if web == "text":
            try:
                body = decode_text(body)
            except ValueError as exc:
                raise BadRequest(str(exc)) from None
        method = scope["path"].rsplit("/", 1)[-1]
        path = f"{self.upstream.base_path}/{self.service}/{method}".encode()
        loop = asyncio.get_running_loop()
        deadline = call.deadline
        asked = grpc.grpc_timeout(next((v for n, v in incoming if n == b"grpc-timeout"), None))
        if asked is not None:
            deadline = min(deadline, loop.time() + asked)
        hop = hop_by_hop_names(incoming)
        dropped = self.dropped
        headers = [(n, v) for n, v in incoming if n not in dropped and n not in hop]
        headers += [(n.lower(), v) for n, v in envelope.gateway_headers()]
        headers += self.static_headers
        if (edits := envelope.upstream_edits) is not None:  # request hooks
            headers = [(n.lower(), v) for n, v in edits.apply(headers)]
        kind = upstream_type(content_type) if web else content_type
        fixed = [(b"content-type", kind), (b"te", b"trailers")]
        steer = self.guard.steer(envelope.client, envelope.identity_key, incoming)
        current: list[H2Call] = []
        attempts = 0

        async def attempt(traceparent: bytes | None, target: TargetState) -> H2Call | Failure:
            nonlocal attempts
            attempts += 1
            left = max(1, int((deadline - loop.time()) * 1000))
            head = [
                (b":method", b"POST"),
                (b":scheme", self.scheme),
                (b":authority", target.origin.host_header[1]),
                (b":path", path),
                *fixed,
                (b"grpc-timeout", f"{left}m".encode()),
                *headers,
            ]
            if traceparent is not None:
                head.append((b"traceparent", traceparent))
            try:
                h2call = await self.client.call(
                    target.target.host,
                    target.target.port,
                    head,
                    end=not body and pump is None,
                )
                current.append(h2call)
                if pump is not None:  # sent as it comes, while the answer flows back
                    h2call.sender = asyncio.create_task(_send_parts(h2call, pump))
                elif body:
                    await h2call.send(body, end=True)
                await h2call.head()
            except H2Failure:
                if isinstance(refusal := current[-1].refusal if current else None, GatewayError):
                    raise refusal from None
                return Failure.CONNECT
            return h2call

        started = time.perf_counter()
        result: H2Call | Failure | None
        try:
            async with asyncio.timeout_at(deadline):
                result = await call_guarded(
                    self.guard,
                    attempt,
                    _judge,
                    idempotent=False,
                    trace=envelope.trace,
                    traced=self.traced if envelope.trace is not None else None,
                    steer=steer,
                )
        except TimeoutError:
            result = Failure.TIMEOUT
        except BaseException:
            for h2call in current:
                await h2call.aclose()
            raise
        if not isinstance(result, H2Call):
            for h2call in current:
                await h2call.aclose()
            failure = Failure.CIRCUIT_OPEN if result is None else result
            self._log(call, None, started, attempts, failure.name.lower())
            raise backend_error(self.backend, failure, status=failure.route_status)
        self._log(call, result.status, started, attempts, "ok")
        if result.status != 200:
            await result.aclose()
            code = grpc.code_for_upstream_http(result.status)
            raise UpstreamNotGrpc(code, f"the upstream answered HTTP {result.status}")
        return self._answer(call, result, deadline, web, content_type)

    def _answer(
        self, call: RouteCall, h2call: H2Call, deadline: float, web: str | None, asked: bytes
    ) -> GrpcResponse:
        head = [(n, v) for n, v in h2call.headers if n not in _NOT_RETURNED]
        trailers_only = h2call.ended and any(n == b"grpc-status" for n, _ in head)
        if trailers_only:  # all of its metadata is trailing: a head, then trailers
            h2call.trailers = [(n, v) for n, v in head if n != b"content-type"]
            head = [(n, v) for n, v in head if n == b"content-type"]
        envelope = call.envelope
        if web is None:
            return GrpcResponse(
                head,
                lambda response: self._messages(h2call, deadline, response),
                envelope=envelope,
                native=True,
                call=h2call,
            )
        kind = asked.split(b";", 1)[0].strip()
        head = [(n, v) for n, v in head if n != b"content-type"] + [(b"content-type", kind)]
        return GrpcResponse(
            head,
            lambda response: self._web(h2call, deadline, response, text=web == "text"),
            envelope=envelope,
            native=False,
            call=h2call,
        )

    async def _messages(
        self, h2call: H2Call, deadline: float, response: GrpcResponse
    ) -> AsyncIterator[bytes]:
        """The answer's DATA, each piece within the deadline; then the
        trailers (the upstream's, or the status the gateway gives an answer
        that broke off or ran out of time) are on `response`."""
        pieces = h2call.body()
        try:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        piece = await anext(pieces)
                except StopAsyncIteration:
                    break
                yield piece
            trailers = h2call.trailers
            if not any(n == b"grpc-status" for n, _ in trailers):
                trailers = trailers + grpc.status_trailers(
                    grpc.INTERNAL, "the upstream ended the call without a status"
                )
            response.trailers = trailers
        except TimeoutError:
            response.trailers = grpc.status_trailers(grpc.DEADLINE_EXCEEDED, "deadline exceeded")
        except H2Failure as exc:
            code = grpc.UNAVAILABLE
            if isinstance(refusal := h2call.refusal, GatewayError):  # the request's own fault
                code = grpc.code_for_gateway(refusal.status)
            response.trailers = grpc.status_trailers(code, str(exc))
        finally:
            await h2call.aclose()
        response.envelope.log.grpc_status = status_of(response.trailers)

    async def _web(
        self, h2call: H2Call, deadline: float, response: GrpcResponse, *, text: bool
    ) -> AsyncIterator[bytes]:
        encoder = TextEncoder() if text else None
        async for piece in self._messages(h2call, deadline, response):
            yield encoder.feed(piece) if encoder is not None else piece
        last = trailer_frame(response.trailers)
        yield encoder.finish(last) if encoder is not None else last

    def _log(
        self, call: RouteCall, status: int | None, started: float, attempts: int, outcome: str
    ) -> None:
        metrics.observe_backend(self.route.name, self.backend, outcome)
        call.envelope.log.backends.append(
            BackendLog(self.backend, status, time.perf_counter() - started, attempts, outcome)
        )


async def _send_parts(h2call: H2Call, pump: BodyPump) -> None:
    """A streamed request body, part by part, then the end of the request;
    past max_body_size the call is given up (RESOURCE_EXHAUSTED)."""
    try:
        async for part in pump.parts():
            await h2call.send(part, end=False)
        await h2call.finish()
    except PayloadTooLarge as exc:
        h2call.give_up(exc)
    except H2Failure:
        return  # the call failed: its answer says so


class UpstreamNotGrpc(GatewayError):
    """The upstream answered plain HTTP (not 200): a gRPC status of its own."""

    status = 502
    slug = "backend-status"

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(detail)
        self.code = code


def _judge(result: H2Call | Failure) -> tuple[bool, bool]:
    if isinstance(result, Failure):
        return True, True
    return result.status >= 500, False


def _describe(result: H2Call | Failure) -> tuple[int | None, bool]:
    if isinstance(result, Failure):
        return None, True
    return result.status, result.status != 200
