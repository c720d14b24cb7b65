"""`grpc:` routes (SPEC 3.18) through the real gateway process, with a grpcio
upstream (tests/integration/grpcstub.py) and grpcio clients: the four kinds of
call, metadata and trailers, grpc-timeout, the gateway's refusals as gRPC
statuses, gRPC-Web binary and text over HTTP/1.1, and an upstream over TLS."""

from __future__ import annotations

import base64
import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import orjson
import pytest

from tests.certs import Authority
from tests.integration.conftest import Gateway, GatewayFactory, free_port, start_process
from tests.integration.otlpstub import Collector
from tests.processes import PYTHON, Process

ROUTES = """
version: 1
upstreams:
  echo: {url: "http://127.0.0.1:${GRPC_PORT}", timeout: 3s}
  secure:
    url: "https://localhost:${TLS_PORT}"
    timeout: 3s
    tls: {ca: ca/test-ca.pem}
  down: {url: "http://127.0.0.1:${DOWN_PORT}", timeout: 1s}
  tripped:
    url: "http://127.0.0.1:${DOWN_PORT}"
    timeout: 1s
    circuit_breaker: {failures: 2, cooldown: 1m}
plans:
  tiny:
    quota: {limit: 1, period: day}
    routes: [metered]
auth:
  keys:
    type: api_key
    identity_header: X-Client-Id
    keys: [{id: alice, key: alice-key}, {id: bob, key: bob-key, plan: tiny}]
routes:
  - name: echo
    grpc: {upstream: echo, service: test.v1.Echo}
    max_body_size: 8MiB
    cors: {allow_origins: ["https://app.example"]}
  - name: short
    path: /test.v1.Echo/Left
    timeout: 1s
    grpc: {upstream: echo, service: test.v1.Echo}
  - name: locked
    path: /locked.Echo/{method}
    auth: keys
    grpc: {upstream: echo, service: test.v1.Echo}
  - name: limited
    path: /limited.Echo/{method}
    rate_limit: {limit: 2, window: 1h}
    grpc: {upstream: echo, service: test.v1.Echo}
  - name: walled
    path: /walled.Echo/{method}
    ip: {deny: [127.0.0.0/8]}
    grpc: {upstream: echo, service: test.v1.Echo}
  - name: hooked
    path: /hooked.Echo/{method}
    hooks: {request: [grpc_hooks:tag]}
    grpc: {upstream: echo, service: test.v1.Echo}
  - name: gone
    grpc: {upstream: down, service: down.Service}
  - name: breaker
    grpc: {upstream: tripped, service: tripped.Service}
  - name: metered
    path: /metered.Echo/{method}
    auth: keys
    grpc: {upstream: echo, service: test.v1.Echo}
  - name: secure
    path: /secure.Echo/{method}
    grpc: {upstream: secure, service: test.v1.Echo}
"""
HOOKS = """
from gateway.hooks import RequestContext


async def tag(ctx: RequestContext) -> None:
    if ctx.request.headers.get("x-deny"):
        ctx.reject(403, "denied by a hook")
    ctx.set_upstream_header("X-Tagged", "yes")
"""


def grpc_stub(directory: Path, cert: Path | None = None, key: Path | None = None) -> Process:
    port = free_port()
    command = [PYTHON, "-m", "tests.integration.grpcstub", "--port", str(port)]
    if cert is not None and key is not None:
        command += ["--cert", str(cert), "--key", str(key)]
    return start_process(command, port, directory / f"grpc-{port}.log", scheme="tcp")


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    process = grpc_stub(tmp_path_factory.mktemp("grpc-plain"))
    yield process
    process.stop()


@pytest.fixture(scope="module")
def gw(
    start_gateway: GatewayFactory,
    tmp_path_factory: pytest.TempPathFactory,
    dead_port: int,
    plain: Process,
) -> Iterator[Gateway]:
    directory = tmp_path_factory.mktemp("grpc")
    authority = Authority(directory / "ca")
    issued = authority.issue("localhost")
    secure = grpc_stub(directory, issued.cert, issued.key)
    hooks = directory / "hooks"
    hooks.mkdir()
    (hooks / "grpc_hooks.py").write_text(HOOKS)
    try:
        gateway = start_gateway(
            ROUTES,
            files={"ca/test-ca.pem": authority.cert.read_text()},
            HTTP2="on",
            GRPC_PORT=str(plain.port),
            TLS_PORT=str(secure.port),
            DOWN_PORT=str(dead_port),
            PYTHONPATH=str(hooks),
        )
        yield gateway
    finally:
        secure.stop()


@pytest.fixture
def channel(gw: Gateway) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{gw.process.port}") as channel:
        yield channel


def unary(channel: grpc.Channel, path: str, message: bytes, **kwargs: Any) -> Any:
    return channel.unary_unary(path).with_call(message, timeout=kwargs.pop("timeout", 5), **kwargs)


def failure(channel: grpc.Channel, path: str, message: bytes = b"", **kwargs: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        unary(channel, path, message, **kwargs)
    return raised.value


def metadata_of(answer: bytes) -> dict[str, str]:
    return dict(json.loads(answer)["metadata"])


# --- calls ------------------------------------------------------------------------


def test_unary_with_metadata_and_trailers(channel: grpc.Channel) -> None:
    answer, call = unary(
        channel,
        "/test.v1.Echo/Echo",
        b"hello",
        metadata=[("x-custom", "1"), ("x-client-id", "forged")],
    )
    assert json.loads(answer)["message"] == "hello"
    sent = metadata_of(answer)
    assert sent["x-custom"] == "1"
    assert "x-client-id" not in sent  # an identity header the gateway owns
    assert sent["x-forwarded-for"] == "127.0.0.1"
    assert sent["x-request-id"] and sent["traceparent"].startswith("00-")
    assert call.code() == grpc.StatusCode.OK
    assert ("x-trail", "yes") in [(m.key, m.value) for m in call.trailing_metadata()]


def test_a_body_past_max_body_size_is_resource_exhausted(channel: grpc.Channel) -> None:
    error = failure(channel, "/hooked.Echo/Echo", b"x" * 2_000_000)  # 1 MiB by default
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_large_messages_both_ways(channel: grpc.Channel) -> None:
    big = b"x" * 3_000_000
    answer, _ = unary(channel, "/test.v1.Echo/Echo", big, timeout=20)
    assert len(json.loads(answer)["message"]) == len(big)


def test_server_client_and_bidirectional_streams(channel: grpc.Channel) -> None:
    counted = channel.unary_stream("/test.v1.Echo/Count")(b"50", timeout=5)
    assert list(counted) == [str(i).encode() for i in range(50)]
    total = channel.stream_unary("/test.v1.Echo/Sum")(iter([b"a", b"b", b"c"]), timeout=5)
    assert total == b"a+b+c"
    chat = channel.stream_stream("/test.v1.Echo/Chat")(iter([b"1", b"2", b"3"]), timeout=5)
    assert list(chat) == [b"echo:1", b"echo:2", b"echo:3"]


def test_a_bidirectional_call_in_lockstep(channel: grpc.Channel) -> None:
    """The client sends its next message only after the answer to the last:
    both directions stay open through the gateway."""
    import queue

    outgoing: queue.Queue[bytes | None] = queue.Queue()

    def requests() -> Iterator[bytes]:
        while (message := outgoing.get(timeout=5)) is not None:
            yield message

    answers = channel.stream_stream("/test.v1.Echo/Total")(requests(), timeout=10)
    totals = []
    for n in (1, 2, 3, 4):
        outgoing.put(str(n).encode())
        totals.append(next(answers))  # waits for this message's answer
    outgoing.put(None)
    assert totals == [b"1", b"3", b"6", b"10"]
    assert list(answers) == []


def test_a_streamed_request_past_max_body_size(channel: grpc.Channel) -> None:
    parts = (b"x" * 300_000 for _ in range(5))  # /hooked: 1 MiB by default
    call = channel.stream_unary("/hooked.Echo/Sum")
    with pytest.raises(grpc.RpcError) as raised:
        call(parts, timeout=10)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_upstream_statuses_pass_through(channel: grpc.Channel) -> None:
    error = failure(channel, "/test.v1.Echo/Fail", b"5")
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "failed as asked: 5"
    assert ("x-why", "asked") in [(m.key, m.value) for m in error.trailing_metadata()]


def test_an_upstream_over_tls(channel: grpc.Channel) -> None:
    answer, call = unary(channel, "/secure.Echo/Echo", b"tls")
    assert json.loads(answer)["message"] == "tls" and call.code() == grpc.StatusCode.OK


# --- deadlines --------------------------------------------------------------------


def test_grpc_timeout_is_enforced(channel: grpc.Channel) -> None:
    started = time.monotonic()
    error = failure(channel, "/test.v1.Echo/Slow", b"3000", timeout=0.5)
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 2


def test_the_time_left_is_passed_on_bounded_by_the_route_timeout(channel: grpc.Channel) -> None:
    unary(channel, "/test.v1.Echo/Echo", b"", timeout=2)  # the connection, opened first
    asked, _ = unary(channel, "/test.v1.Echo/Left", b"", timeout=0.8)
    assert 300 < int(asked) <= 800
    bounded, _ = unary(channel, "/test.v1.Echo/Left", b"", timeout=30)  # route timeout: 1 s
    assert 300 < int(bounded) <= 1000


# --- refusals as gRPC statuses ----------------------------------------------------


def test_auth_refusals_are_unauthenticated(channel: grpc.Channel) -> None:
    assert failure(channel, "/locked.Echo/Echo").code() == grpc.StatusCode.UNAUTHENTICATED
    answer, _ = unary(channel, "/locked.Echo/Echo", b"in", metadata=[("x-api-key", "alice-key")])
    assert metadata_of(answer)["x-client-id"] == "alice"


def test_rate_limits_are_resource_exhausted(channel: grpc.Channel) -> None:
    codes = []
    for _ in range(3):
        try:
            unary(channel, "/limited.Echo/Echo", b"")
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as exc:
            codes.append(exc.code())
    assert codes == [grpc.StatusCode.OK, grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED]


def test_ip_lists_are_permission_denied(channel: grpc.Channel) -> None:
    assert failure(channel, "/walled.Echo/Echo").code() == grpc.StatusCode.PERMISSION_DENIED


def test_request_hooks_apply(channel: grpc.Channel) -> None:
    answer, _ = unary(channel, "/hooked.Echo/Echo", b"")
    assert metadata_of(answer)["x-tagged"] == "yes"
    denied = failure(channel, "/hooked.Echo/Echo", metadata=[("x-deny", "1")])
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    assert denied.details() == "denied by a hook"


def test_an_upstream_down_is_unavailable(channel: grpc.Channel) -> None:
    error = failure(channel, "/down.Service/Anything")
    assert error.code() == grpc.StatusCode.UNAVAILABLE


def test_an_open_circuit_is_unavailable(channel: grpc.Channel) -> None:
    for _ in range(2):  # two connection failures open it
        assert failure(channel, "/tripped.Service/X").code() == grpc.StatusCode.UNAVAILABLE
    opened = failure(channel, "/tripped.Service/X")
    assert opened.code() == grpc.StatusCode.UNAVAILABLE
    assert "circuit open" in opened.details()


def test_a_plans_quota_is_resource_exhausted(channel: grpc.Channel) -> None:
    key = [("x-api-key", "bob-key")]
    _, call = unary(channel, "/metered.Echo/Echo", b"", metadata=key)
    assert dict(call.initial_metadata())["x-quota-remaining"] == "0"
    spent = failure(channel, "/metered.Echo/Echo", metadata=key)
    assert spent.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert dict(spent.trailing_metadata() or ()).get("retry-after") or dict(
        spent.initial_metadata() or ()
    ).get("retry-after")


def test_unknown_service_is_unimplemented(channel: grpc.Channel) -> None:
    assert failure(channel, "/nope.Service/X").code() == grpc.StatusCode.UNIMPLEMENTED


# --- gRPC-Web ---------------------------------------------------------------------


def frame(message: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", len(message)) + message


def frames(body: bytes) -> list[tuple[int, bytes]]:
    out = []
    while body:
        flag, size = body[0], struct.unpack(">I", body[1:5])[0]
        out.append((flag, body[5 : 5 + size]))
        body = body[5 + size :]
    return out


def test_grpc_web_binary_over_http1(gw: Gateway) -> None:
    reply = gw.client.post(
        "/test.v1.Echo/Count",
        content=frame(b"3"),
        headers={"content-type": "application/grpc-web+proto", "x-grpc-web": "1"},
    )
    assert reply.http_version == "HTTP/1.1" and reply.status_code == 200
    assert reply.headers["content-type"] == "application/grpc-web+proto"
    parsed = frames(reply.content)
    assert parsed[:3] == [(0, b"0"), (0, b"1"), (0, b"2")]
    flag, trailers = parsed[3]
    assert flag == 0x80 and b"grpc-status: 0\r\n" in trailers


def test_grpc_web_text(gw: Gateway) -> None:
    reply = gw.client.post(
        "/test.v1.Echo/Fail",
        content=base64.b64encode(frame(b"7")),
        headers={"content-type": "application/grpc-web-text"},
    )
    assert reply.headers["content-type"] == "application/grpc-web-text"
    ((flag, trailers),) = frames(base64.b64decode(reply.content))
    assert flag == 0x80
    assert b"grpc-status: 7\r\n" in trailers and b"x-why: asked\r\n" in trailers
    echoed = gw.client.post(
        "/test.v1.Echo/Echo",
        content=base64.b64encode(frame(b"hi")),
        headers={"content-type": "application/grpc-web-text+proto"},
    )
    decoded = frames(base64.b64decode(echoed.content))
    assert json.loads(decoded[0][1])["message"] == "hi"
    assert decoded[-1][0] == 0x80 and b"x-trail: yes" in decoded[-1][1]


def test_grpc_web_refusal_in_the_head(gw: Gateway) -> None:
    reply = gw.client.post(
        "/locked.Echo/Echo", content=frame(b""), headers={"content-type": "application/grpc-web"}
    )
    assert reply.status_code == 200
    assert reply.headers["grpc-status"] == "16" and reply.headers["grpc-message"]
    assert reply.content == b""


def test_grpc_web_cors(gw: Gateway) -> None:
    origin = "https://app.example"
    preflight = gw.client.options(
        "/test.v1.Echo/Echo",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-grpc-web",
        },
    )
    assert preflight.status_code == 204
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert "x-grpc-web" in allowed and "content-type" in allowed
    reply = gw.client.post(
        "/test.v1.Echo/Echo",
        content=frame(b"c"),
        headers={"content-type": "application/grpc-web", "Origin": origin},
    )
    assert reply.headers["access-control-allow-origin"] == origin
    assert "grpc-status" in reply.headers["access-control-expose-headers"].lower()


def test_native_grpc_over_http1_is_refused_as_grpc(gw: Gateway) -> None:
    reply = gw.client.post(
        "/test.v1.Echo/Echo", content=frame(b""), headers={"content-type": "application/grpc"}
    )
    assert reply.status_code == 200 and reply.headers["grpc-status"] == "3"


def test_a_plain_http_request_is_refused_as_grpc(gw: Gateway) -> None:
    reply = gw.client.post("/test.v1.Echo/Echo", json={"a": 1})
    assert reply.headers["grpc-status"] == "3"


# --- what operators see -----------------------------------------------------------


def test_access_log_has_the_grpc_status(gw: Gateway, channel: grpc.Channel) -> None:
    failure(channel, "/test.v1.Echo/Fail", b"9")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [orjson.loads(x) for x in gw.process.output().splitlines() if '"grpc_status"' in x]
        if any(x["grpc_status"] == 9 and x["path"] == "/test.v1.Echo/Fail" for x in lines):
            assert all(x["route"] for x in lines)
            return
        time.sleep(0.1)
    pytest.fail("no access log line with grpc_status 9")


def test_metrics_count_the_calls(gw: Gateway, channel: grpc.Channel) -> None:
    unary(channel, "/test.v1.Echo/Echo", b"")
    metrics = httpx.get(gw.admin_url + "/metrics").text
    assert 'route="echo"' in metrics


def test_spans_follow_the_grpc_conventions(start_gateway: GatewayFactory, plain: Process) -> None:
    routes = """
version: 1
upstreams:
  echo: {url: "http://127.0.0.1:${GRPC_PORT}", timeout: 3s}
routes:
  - {name: echo, grpc: {upstream: echo, service: test.v1.Echo}}
"""
    collector = Collector()
    try:
        exporting = start_gateway(
            routes,
            HTTP2="on",
            GRPC_PORT=str(plain.port),
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="100",
            ADMIN_ADDR="off",
        )
        trace_id = "7" * 32
        with grpc.insecure_channel(f"127.0.0.1:{exporting.process.port}") as channel:
            traced = [("traceparent", f"00-{trace_id}-{'8' * 16}-01")]
            with pytest.raises(grpc.RpcError):
                unary(channel, "/test.v1.Echo/Fail", b"14", metadata=traced)
        server, client = sorted(collector.trace(trace_id, 2), key=lambda s: s.kind)
    finally:
        collector.close()
    assert server.attributes["rpc.system"] == "grpc"
    assert server.attributes["rpc.service"] == "test.v1.Echo"
    assert server.attributes["rpc.method"] == "Fail"
    assert server.attributes["rpc.grpc.status_code"] == 14
    assert server.status == 2  # UNAVAILABLE is the server's failure
    assert client.attributes["rpc.service"] == "test.v1.Echo"
    assert client.parent_id == server.span_id


def test_no_traceback(gw: Gateway) -> None:
    assert "Traceback" not in gw.process.output()
