"""OTLP trace payloads (an `ExportTraceServiceRequest` in protobuf), written
directly from the recorded tuples of gateway/observe/trace.py.

Why not the SDK's encoder: `opentelemetry-exporter-otlp-proto-common` builds
a protobuf object per span, attribute and value, about 30 µs per span on this
machine, which alone would cost the 3-backend route a third of its CPU per
request. Here every part of a span that is fixed for its route or backend
(name, kind, method, route, server address and port, backend name) is encoded
once and kept; per span only ids, times, path, client, status and attempt are
written. tests/observe/test_otlp.py decodes the result with the official
protobuf classes (`opentelemetry-proto`) and compares every field.

Wire format: https://protobuf.dev/programming-guides/encoding/ and
opentelemetry/proto/trace/v1/trace.proto.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from gateway.observe.trace import CallRecord, CallTarget, ServerRecord

if TYPE_CHECKING:
    from gateway.routes.model import Route

__all__ = ["SpanEncoder"]

_KIND_SERVER, _KIND_CLIENT = 2, 3
_STATUS_ERROR = 2
_FIXED64 = struct.Struct("<Q").pack
_DOUBLE = struct.Struct("<d").pack
_HTTP_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
)
# gRPC statuses that are a server's failure (OpenTelemetry's gRPC conventions):
# UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS.
_GRPC_SERVER_ERRORS = frozenset({2, 4, 12, 13, 14, 15})
_CACHE_LIMIT = 4096  # fixed parts kept (routes x methods, backends x methods)

type Value = str | bool | int | float | Sequence[str | bool | int | float]


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # int64: two's complement, ten bytes
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _text(value: str) -> bytes:
    """UTF-8, as protobuf strings must be (a request path may hold anything)."""
    return value.encode("utf-8", "replace")


def _any_value(value: Value) -> bytes:
    if isinstance(value, str):
        return _field(1, _text(value))
    if isinstance(value, bool):
        return b"\x10" + (b"\x01" if value else b"\x00")
    if isinstance(value, int):
        return b"\x18" + _varint(value)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    items = b"".join(_field(1, _any_value(item)) for item in value)
    return _field(5, items)  # ArrayValue


def _attribute(key: str, value: Value) -> bytes:
    """One KeyValue, as a Span's (or a Resource's) repeated `attributes` field 9 (1)."""
    return _field(9, _field(1, _text(key)) + _field(2, _any_value(value)))


def _status_code(status: int) -> bytes:
    return _attribute("http.response.status_code", status)


def _attempt(attempt: int) -> bytes:
    return _attribute("gateway.attempt", attempt)


_ERROR = _field(15, b"\x18" + bytes((_STATUS_ERROR,)))  # Span.status: code ERROR


class SpanEncoder:
    """Encodes batches of recorded requests for one resource (service name
    and the rest of OTEL_RESOURCE_ATTRIBUTES) and one instrumentation scope."""

    def __init__(self, resource: Mapping[str, Value], scope: str) -> None:
        attributes = b"".join(
            _field(1, _field(1, k.encode()) + _field(2, _any_value(v))) for k, v in resource.items()
        )
        self._resource = _field(1, attributes)  # ResourceSpans.resource
        self._scope = _field(1, _field(1, scope.encode()))  # ScopeSpans.scope: its name
        self._servers: dict[tuple[str, str | None, str | None], bytes] = {}
        self._clients: dict[CallTarget, bytes] = {}
        self._statuses = {code: _status_code(code) for code in range(100, 600)}
        self._attempts = {n: _attempt(n) for n in range(1, 11)}

    def encode(self, records: Iterable[ServerRecord]) -> tuple[bytes, int]:
        """The request body for `records`, and how many spans it holds."""
        spans: list[bytes] = []
        for record in records:
            spans.append(self._server_span(record))
            spans.extend(self._client_span(record, call) for call in record.calls)
        scope_spans = _field(2, self._scope + b"".join(spans))
        resource_spans = _field(1, self._resource + scope_spans)
        return resource_spans, len(spans)

    def _server_span(self, r: ServerRecord) -> bytes:
        method = r.method if r.method in _HTTP_METHODS else "_OTHER"
        route = r.route
        key = (method, route.name if route else None, route.path if route else None)
        fixed = self._servers.get(key)
        if fixed is None:
            fixed = self._keep(self._servers, key, _server_fixed(method, route))
        body = [
            b"\x0a\x10" + bytes.fromhex(r.trace_id),
            b"\x12\x08" + bytes.fromhex(r.span_id),
        ]
        if r.tracestate:
            body.append(_field(3, r.tracestate))
        if r.parent_id:
            body.append(b"\x22\x08" + bytes.fromhex(r.parent_id))
        body += (
            fixed,
            b"\x39" + _FIXED64(r.start_ns),
            b"\x41" + _FIXED64(r.end_ns),
            _attribute("url.path", r.path),
            _attribute("client.address", r.client),
            self._statuses.get(r.status) or _status_code(r.status),
        )
        failed = r.status >= 500  # a SERVER span's 4xx is the client's doing
        if route is not None and route.kind_name == "grpc":
            body.append(_attribute("rpc.method", r.path.rsplit("/", 1)[-1]))
            if r.grpc_status is not None:
                body.append(_attribute("rpc.grpc.status_code", r.grpc_status))
                failed = r.grpc_status in _GRPC_SERVER_ERRORS
        if failed:
            body.append(_ERROR)
        return _field(2, b"".join(body))

    def _client_span(self, r: ServerRecord, call: CallRecord) -> bytes:
        span_id, start, end, target, attempt, status, failed = call
        fixed = self._clients.get(target)
        if fixed is None:
            fixed = self._keep(self._clients, target, _client_fixed(target))
        body = [
            b"\x0a\x10" + bytes.fromhex(r.trace_id),
            b"\x12\x08" + bytes.fromhex(span_id),
        ]
        if r.tracestate:
            body.append(_field(3, r.tracestate))
        body += (
            b"\x22\x08" + bytes.fromhex(r.span_id),
            fixed,
            b"\x39" + _FIXED64(start),
            b"\x41" + _FIXED64(end),
            self._attempts.get(attempt) or _attempt(attempt),
        )
        if status is not None:
            body.append(self._statuses.get(status) or _status_code(status))
        if failed:
            body.append(_ERROR)
        return _field(2, b"".join(body))

    @staticmethod
    def _keep[K](cache: dict[K, bytes], key: K, value: bytes) -> bytes:
        if len(cache) >= _CACHE_LIMIT:  # reloads keep making new routes: start afresh
            cache.clear()
        cache[key] = value
        return value


def _server_fixed(method: str, route: Route | None) -> bytes:
    name = method
    attributes = _attribute("http.request.method", method)
    if route is not None:
        name = f"{method} {route.path}"
        attributes += _attribute("http.route", route.path) + _attribute("gateway.route", route.name)
        service = getattr(route.kind, "service", None)
        if route.kind_name == "grpc" and isinstance(service, str):
            attributes += _attribute("rpc.system", "grpc") + _attribute("rpc.service", service)
    return _field(5, name.encode()) + bytes((6 << 3, _KIND_SERVER)) + attributes


def _client_fixed(target: CallTarget) -> bytes:
    method = target.method if target.method in _HTTP_METHODS else "_OTHER"
    return (
        _field(5, method.encode())
        + bytes((6 << 3, _KIND_CLIENT))
        + _attribute("server.address", target.host)
        + _attribute("server.port", target.port)
        + _attribute("http.request.method", method)
        + _attribute("gateway.backend", target.backend)
        + (
            _attribute("rpc.system", "grpc") + _attribute("rpc.service", target.rpc_service)
            if target.rpc_service is not None
            else b""
        )
    )
