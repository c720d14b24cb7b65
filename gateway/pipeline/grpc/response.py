"""What a `grpc` route answers: a relayed call (`GrpcResponse`), or a
refusal as a gRPC status (`refusal`), never problem+json.

Native gRPC answers end with HTTP/2 trailers (`sends_trailers`: the ASGI
handler sends them after the body). gRPC-Web answers carry theirs in the
body's last frame, or, for a refusal, in the head.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable

from gateway.envelope import Envelope, RouteCall
from gateway.errors import GatewayError
from gateway.pipeline.grpc import status as grpc
from gateway.pipeline.grpc.web import web_mode
from gateway.responses import RelayedResponse
from gateway.routes.model import native_grpc
from gateway.stack import RouteHandler
from gateway.upstream.h2client import H2Call

__all__ = ["GrpcResponse", "answering_errors", "refusal", "status_of"]


class GrpcResponse(RelayedResponse):
    def __init__(
        self,
        head: list[tuple[bytes, bytes]],
        make_relay: Callable[[GrpcResponse], AsyncIterable[bytes]],
        *,
        envelope: Envelope,
        native: bool,
        call: H2Call | None = None,
        trailers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.trailers = trailers or []  # complete once the relay has ended
        self.envelope = envelope
        self.sends_trailers = native
        self._call = call
        super().__init__(200, head, make_relay(self))

    async def aclose_upstream(self) -> None:
        if self._call is not None:
            await self._call.aclose()

    def why_cut(self, error: Exception) -> tuple[str, str]:
        return "upstream_failed", f"the call broke off: {error}"


def status_of(trailers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in trailers:
        if name == b"grpc-status":
            return int(value) if value.isdigit() else None
    return None


async def _nothing(_: GrpcResponse) -> AsyncIterator[bytes]:
    parts: tuple[bytes, ...] = ()
    for part in parts:
        yield part


def refusal(error: GatewayError, call: RouteCall) -> GrpcResponse:
    """A gateway error as a gRPC status: HTTP 200, no message."""
    code = getattr(error, "code", None)
    if not isinstance(code, int):
        code = grpc.code_for_gateway(error.status)
    trailers = grpc.status_trailers(code, error.detail)
    scope = call.http.scope
    asked = next((v for n, v in scope["headers"] if n == b"content-type"), b"")
    extra = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in error.headers.items()]
    call.envelope.log.grpc_status = code
    native = native_grpc(scope) and "http.response.trailers" in scope.get("extensions", {})
    if native:
        head = [(b"content-type", b"application/grpc"), *extra]
        return GrpcResponse(head, _nothing, envelope=call.envelope, native=True, trailers=trailers)
    kind = asked.split(b";", 1)[0].strip() if web_mode(asked) else b"application/grpc"
    head = [(b"content-type", kind), *extra, *trailers]  # trailers-only, in the head
    return GrpcResponse(head, _nothing, envelope=call.envelope, native=False)


def answering_errors(handler: RouteHandler) -> RouteHandler:
    """A `grpc` route's whole stack, its refusals answered as gRPC statuses."""

    async def answered(call: RouteCall) -> GrpcResponse:
        try:
            return await handler(call)  # type: ignore[return-value]
        except GatewayError as exc:
            return refusal(exc, call)

    return answered
