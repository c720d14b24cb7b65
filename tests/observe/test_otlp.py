"""The hand-written OTLP encoder against the official protobuf classes
(gateway/observe/otlp.py): every field it writes decodes to what was recorded."""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from gateway.observe.otlp import SpanEncoder
from gateway.observe.trace import CallTarget, ServerRecord
from gateway.registry import parse_routes_file

ROUTES = """
version: 1
upstreams:
  users: {url: "http://users.internal:8080"}
routes:
  - name: dashboard
    path: /api/users/{user_id}/dashboard
    backends: [{upstream: users, path: "/users/{user_id}", key: user}]
"""


def value(v: AnyValue) -> object:
    kind = v.WhichOneof("value")
    assert kind is not None
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    return getattr(v, kind)


def record(route: object, **changes: object) -> ServerRecord:
    target = CallTarget("user", "users.internal", 8080, "GET")
    fields: dict[str, object] = {
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "00f067aa0ba902b7",
        "parent_id": "a" * 16,
        "tracestate": b"vendor=1",
        "start_ns": 1_700_000_000_000_000_000,
        "end_ns": 1_700_000_000_005_000_000,
        "method": "GET",
        "route": route,
        "path": "/api/users/7/dashboard",
        "client": "203.0.113.9",
        "status": 200,
        "calls": [
            ("1" * 16, 1_700_000_000_001_000_000, 1_700_000_000_002_000_000, target, 1, 503, True),
            ("2" * 16, 1_700_000_000_003_000_000, 1_700_000_000_004_000_000, target, 2, 200, False),
            ("3" * 16, 1_700_000_000_003_000_000, 1_700_000_000_004_000_000, target, 3, None, True),
        ],
    }
    return ServerRecord(**(fields | changes))  # type: ignore[arg-type]


def decode(data: bytes) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest.FromString(data)


def test_every_field_decodes_as_recorded() -> None:
    route = parse_routes_file(ROUTES.encode(), "routes.yaml").routes[0]
    resource: dict[str, str | bool | int | float | list[str]] = {
        "service.name": "gateway",
        "n": 3,
        "f": 0.5,
        "b": True,
        "list": ["a", "b"],
    }
    data, count = SpanEncoder(resource, "gateway").encode([record(route)])
    assert count == 4
    request = decode(data)
    (resource_spans,) = request.resource_spans
    assert {a.key: value(a.value) for a in resource_spans.resource.attributes} == resource
    (scope_spans,) = resource_spans.scope_spans
    assert scope_spans.scope.name == "gateway"
    server, *clients = scope_spans.spans
    assert server.trace_id.hex() == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert server.span_id.hex() == "00f067aa0ba902b7" and server.parent_span_id.hex() == "a" * 16
    assert server.trace_state == "vendor=1"
    assert server.name == "GET /api/users/{user_id}/dashboard" and server.kind == 2
    assert (server.start_time_unix_nano, server.end_time_unix_nano) == (
        1_700_000_000_000_000_000,
        1_700_000_000_005_000_000,
    )
    assert {a.key: value(a.value) for a in server.attributes} == {
        "http.request.method": "GET",
        "http.route": "/api/users/{user_id}/dashboard",
        "gateway.route": "dashboard",
        "url.path": "/api/users/7/dashboard",
        "client.address": "203.0.113.9",
        "http.response.status_code": 200,
    }
    assert server.status.code == 0
    assert [c.parent_span_id.hex() for c in clients] == ["00f067aa0ba902b7"] * 3
    assert [c.span_id.hex() for c in clients] == ["1" * 16, "2" * 16, "3" * 16]
    assert [c.kind for c in clients] == [3, 3, 3] and clients[0].name == "GET"
    assert [c.status.code for c in clients] == [2, 0, 2]
    attributes = [{a.key: value(a.value) for a in c.attributes} for c in clients]
    assert attributes[0] == {
        "server.address": "users.internal",
        "server.port": 8080,
        "http.request.method": "GET",
        "gateway.backend": "user",
        "gateway.attempt": 1,
        "http.response.status_code": 503,
    }
    assert attributes[2]["gateway.attempt"] == 3
    assert "http.response.status_code" not in attributes[2]  # no answer


def test_unrouted_unknown_methods_big_numbers_and_server_errors() -> None:
    data, count = SpanEncoder({}, "gateway").encode(
        [record(None, method="BREW", parent_id=None, tracestate=None, status=599, calls=[])]
    )
    (span,) = decode(data).resource_spans[0].scope_spans[0].spans
    assert count == 1 and span.name == "_OTHER" and span.status.code == 2
    assert span.parent_span_id == b"" and span.trace_state == ""
    attributes = {a.key: value(a.value) for a in span.attributes}
    assert attributes["http.request.method"] == "_OTHER" and "http.route" not in attributes
    assert attributes["http.response.status_code"] == 599


def test_many_requests_make_one_batch() -> None:
    route = parse_routes_file(ROUTES.encode(), "routes.yaml").routes[0]
    data, count = SpanEncoder({}, "gateway").encode([record(route)] * 100)
    assert count == 400
    assert len(decode(data).resource_spans[0].scope_spans[0].spans) == 400


def test_text_that_is_not_utf8_still_encodes() -> None:
    data, _ = SpanEncoder({}, "gateway").encode([record(None, path="/caf\udce9", calls=[])])
    (span,) = decode(data).resource_spans[0].scope_spans[0].spans
    paths = [a.value.string_value for a in span.attributes if a.key == "url.path"]
    assert paths == ["/caf?"]


GRPC_ROUTES = """
version: 1
upstreams:
  users: {url: "http://users.internal:50051"}
routes:
  - name: users-rpc
    grpc: {upstream: users, service: users.v1.Users}
"""


def test_grpc_calls_carry_the_rpc_conventions() -> None:
    route = parse_routes_file(GRPC_ROUTES.encode(), "routes.yaml").routes[0]
    target = CallTarget("users", "users.internal", 50051, "POST", "users.v1.Users")
    call = ("1" * 16, 1_700_000_000_001_000_000, 1_700_000_000_002_000_000, target, 1, 200, False)
    records = [
        record(route, method="POST", path="/users.v1.Users/GetUser", calls=[call], grpc_status=5),
        record(route, method="POST", path="/users.v1.Users/GetUser", calls=[], grpc_status=14),
    ]
    data, _ = SpanEncoder({}, "gateway").encode(records)
    server, client, failed = decode(data).resource_spans[0].scope_spans[0].spans
    attributes = {a.key: value(a.value) for a in server.attributes}
    assert attributes["rpc.system"] == "grpc" and attributes["rpc.service"] == "users.v1.Users"
    assert attributes["rpc.method"] == "GetUser" and attributes["rpc.grpc.status_code"] == 5
    assert server.status.code == 0  # NOT_FOUND is the client's doing
    assert failed.status.code == 2  # UNAVAILABLE is the server's
    outgoing = {a.key: value(a.value) for a in client.attributes}
    assert outgoing["rpc.system"] == "grpc" and outgoing["rpc.service"] == "users.v1.Users"
