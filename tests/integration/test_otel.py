"""OpenTelemetry export through real processes (SPEC 3.13, second part): a
gateway under uvicorn exports to a stub OTLP/HTTP collector that decodes the
protobuf; spans, parents, attributes, sampling, and a collector that is down
or slow."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.integration.conftest import PYTHON, ROOT, Gateway, GatewayFactory, Stub, free_port
from tests.integration.otlpstub import Collector, Span

ROUTES = """
version: 1
upstreams:
  stub: {url: "${STUB}", timeout: 2s, retries: {attempts: 3, backoff: 10ms}}
  live: {url: "${LIVE}", timeout: 2s}
routes:
  - name: dashboard
    path: /api/users/{user_id}/dashboard
    backends:
      - {upstream: stub, path: "/echo/users/{user_id}", key: user}
      - {upstream: stub, path: "/flaky/{user_id}/1", key: flaky}
  - name: broken
    path: /broken
    backends:
      - {upstream: stub, path: /status/500, key: a}
  - name: pass
    path: /pass/{rest:path}
    proxy: {upstream: stub, path: "/echo/{rest}"}
  - name: chat
    path: /chat
    websocket: {upstream: live, path: /ws/echo/chat}
"""
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
SERVER, CLIENT, ERROR = 2, 3, 2


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.close()


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, stub: Stub, live: Stub, collector: Collector) -> Gateway:
    return start_gateway(
        ROUTES,
        STUB=stub.url,
        LIVE=live.url,
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=test",
    )


def sent_traceparent(echo: dict[str, Any]) -> tuple[str, str, str]:
    (value,) = [v for n, v in echo["headers"] if n == "traceparent"]
    _, trace_id, span_id, flags = value.split("-")
    return trace_id, span_id, flags


def exporting(start_gateway: GatewayFactory, stub: Stub, endpoint: str, **env: str) -> Gateway:
    """A gateway of ROUTES exporting to `endpoint`, in batches every 50 ms."""
    return start_gateway(
        ROUTES,
        STUB=stub.url,
        LIVE=stub.url,
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        **{"OTEL_BSP_SCHEDULE_DELAY": "50", **env},
    )


def by_kind(spans: list[Span], kind: int) -> list[Span]:
    return sorted((s for s in spans if s.kind == kind), key=lambda s: s.start)


def test_one_server_span_per_request_and_one_client_span_per_attempt(
    gw: Gateway, collector: Collector, stub: Stub
) -> None:
    stub.reset()
    response = gw.get(
        "/api/users/7/dashboard",
        headers={"traceparent": f"00-{TRACE}-{PARENT}-01", "tracestate": "vendor=1"},
    )
    assert response.status_code == 200
    spans = collector.trace(TRACE, 4)  # the server, users, flaky twice (503, then 200)
    (server,) = by_kind(spans, SERVER)
    assert server.name == "GET /api/users/{user_id}/dashboard"
    assert server.parent_id == PARENT and server.trace_state == "vendor=1"
    assert server.attributes == {
        "http.request.method": "GET",
        "http.route": "/api/users/{user_id}/dashboard",
        "url.path": "/api/users/7/dashboard",
        "http.response.status_code": 200,
        "client.address": "127.0.0.1",
        "gateway.route": "dashboard",
    }
    assert server.status == 0
    assert server.resource["service.name"] == "gateway"
    assert server.resource["deployment.environment"] == "test"
    clients = by_kind(spans, CLIENT)
    assert len(clients) == 3 and all(c.parent_id == server.span_id for c in clients)
    assert all(server.start <= c.start <= c.end <= server.end for c in clients)
    port = int(stub.url.rsplit(":", 1)[1])
    users = [c for c in clients if c.attributes["gateway.backend"] == "user"]
    flaky = sorted(
        (c for c in clients if c.attributes["gateway.backend"] == "flaky"),
        key=lambda c: c.attributes["gateway.attempt"],
    )
    assert users[0].name == "GET"
    assert users[0].attributes == {
        "server.address": "127.0.0.1",
        "server.port": port,
        "http.request.method": "GET",
        "gateway.backend": "user",
        "gateway.attempt": 1,
        "http.response.status_code": 200,
    }
    assert [
        (c.attributes["gateway.attempt"], c.attributes["http.response.status_code"]) for c in flaky
    ] == [(1, 503), (2, 200)]
    assert [c.status for c in flaky] == [ERROR, 0]
    # The upstream saw the CLIENT span of its attempt as its parent.
    trace_id, span_id, flags = sent_traceparent(response.json()["user"])
    assert (trace_id, span_id, flags) == (TRACE, users[0].span_id, "01")


def test_a_failed_route_marks_its_server_span_and_attempts_as_errors(
    gw: Gateway, collector: Collector
) -> None:
    response = gw.get("/broken", headers={"traceparent": f"00-{'1' * 32}-{PARENT}-01"})
    assert response.status_code == 502
    spans = collector.trace("1" * 32, 2)
    (server,) = by_kind(spans, SERVER)
    assert server.status == ERROR and server.attributes["http.response.status_code"] == 502
    clients = by_kind(spans, CLIENT)
    assert clients and all(c.status == ERROR for c in clients)
    assert all(c.attributes["http.response.status_code"] == 500 for c in clients)


def test_proxied_requests_and_websocket_handshakes_get_client_spans(
    gw: Gateway, collector: Collector
) -> None:
    echo = gw.get("/pass/a/b", headers={"traceparent": f"00-{'2' * 32}-{PARENT}-01"}).json()
    server, client = sorted(collector.trace("2" * 32, 2), key=lambda s: s.kind)
    assert server.name == "GET /pass/{rest:path}" and client.parent_id == server.span_id
    assert client.attributes["gateway.backend"] == "stub"
    assert sent_traceparent(echo)[1] == client.span_id

    async def chat() -> dict[str, Any]:
        url = gw.url.replace("http", "ws") + "/chat"
        headers = {"traceparent": f"00-{'3' * 32}-{PARENT}-01"}
        async with connect(url, additional_headers=headers) as ws:
            await ws.send("hello")  # the live stub answers with the handshake it saw
            return dict(json.loads(await ws.recv()))  # the upstream's echo of the handshake

    hello = asyncio.run(chat())
    server, client = sorted(collector.trace("3" * 32, 2), key=lambda s: s.kind)
    assert server.name == "GET /chat" and server.attributes["http.response.status_code"] == 101
    assert client.attributes["http.response.status_code"] == 101 and client.status == 0
    assert sent_traceparent(hello)[1] == client.span_id  # the handshake named its span


def test_an_unrouted_request_is_named_by_its_method_alone(
    gw: Gateway, collector: Collector
) -> None:
    gw.get("/nowhere", headers={"traceparent": f"00-{'4' * 32}-{PARENT}-01"})
    (server,) = collector.trace("4" * 32, 1)
    assert server.name == "GET" and "http.route" not in server.attributes
    assert server.attributes["http.response.status_code"] == 404 and server.status == 0


def test_a_caller_that_did_not_sample_is_followed(gw: Gateway, collector: Collector) -> None:
    echo = gw.get("/pass/x", headers={"traceparent": f"00-{'5' * 32}-{PARENT}-00"}).json()
    assert sent_traceparent(echo)[2] == "00"
    gw.get("/pass/x", headers={"traceparent": f"00-{'6' * 32}-{PARENT}-01"})
    collector.trace("6" * 32, 2)  # a later request arrived: the unsampled one would have too
    assert not [s for s in collector.spans if s.trace_id == "5" * 32]


@pytest.mark.parametrize(
    ("sampler", "arg"),
    [("always_off", ""), ("traceidratio", "0"), ("parentbased_traceidratio", "0")],
)
def test_the_sampler_is_read_from_the_environment(
    start_gateway: GatewayFactory, stub: Stub, collector: Collector, sampler: str, arg: str
) -> None:
    gateway = start_gateway(
        ROUTES,
        STUB=stub.url,
        LIVE=stub.url,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=collector.endpoint + "/v1/traces",  # the other variable
        OTEL_BSP_SCHEDULE_DELAY="50",
        OTEL_TRACES_SAMPLER=sampler,
        OTEL_TRACES_SAMPLER_ARG=arg,
        OTEL_SERVICE_NAME="edge-" + sampler,
    )
    echo = gateway.get("/pass/x").json()
    trace_id, _, flags = sent_traceparent(echo)
    assert flags == "00"  # not sampled here: downstream is told so
    time.sleep(0.5)
    assert not [s for s in collector.spans if s.trace_id == trace_id]


def test_the_traces_endpoint_alone_turns_export_on(
    start_gateway: GatewayFactory, stub: Stub, collector: Collector
) -> None:
    gateway = start_gateway(
        ROUTES,
        STUB=stub.url,
        LIVE=stub.url,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=collector.endpoint + "/v1/traces",
        OTEL_BSP_SCHEDULE_DELAY="50",
    )
    trace_id = sent_traceparent(gateway.get("/pass/x").json())[0]
    assert len(collector.trace(trace_id, 2)) == 2


def test_the_service_name_comes_from_otel_service_name(
    start_gateway: GatewayFactory, stub: Stub, collector: Collector
) -> None:
    gateway = exporting(start_gateway, stub, collector.endpoint, OTEL_SERVICE_NAME="edge-gateway")
    trace_id = sent_traceparent(gateway.get("/pass/x").json())[0]
    spans = collector.trace(trace_id, 2)
    assert {s.resource["service.name"] for s in spans} == {"edge-gateway"}
    assert collector.content_types >= {"/v1/traces application/x-protobuf"}


def export_errors(gateway: Gateway) -> float:
    text = gateway.admin_get("/metrics").text
    found = re.search(r"^gateway_trace_export_errors_total (\S+)$", text, re.M)
    assert found is not None
    return float(found[1])


def wait_for_errors(gateway: Gateway, at_least: float) -> float:
    deadline = time.monotonic() + 10
    while (errors := export_errors(gateway)) < at_least and time.monotonic() < deadline:
        time.sleep(0.05)
    return errors


def timed_requests(gateway: Gateway, n: int) -> float:
    slowest = 0.0
    for _ in range(n):
        started = time.perf_counter()
        assert gateway.get("/pass/x").status_code == 200
        slowest = max(slowest, time.perf_counter() - started)
    return slowest


def test_a_collector_that_is_down_costs_requests_nothing_and_drops_are_counted(
    start_gateway: GatewayFactory, stub: Stub
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # nobody listens
    gateway = exporting(start_gateway, stub, nobody, OTEL_EXPORTER_OTLP_TIMEOUT="1")
    assert timed_requests(gateway, 50) < 0.5
    assert wait_for_errors(gateway, 100) >= 100  # 50 requests x 2 spans


def test_a_slow_collector_never_slows_a_request(start_gateway: GatewayFactory, stub: Stub) -> None:
    slow = Collector()
    slow.answer_after = 3.0
    try:
        gateway = exporting(
            start_gateway,
            stub,
            slow.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="20",
            OTEL_BSP_MAX_QUEUE_SIZE="20",
            OTEL_BSP_MAX_EXPORT_BATCH_SIZE="4",
        )
        assert timed_requests(gateway, 100) < 0.5
        assert export_errors(gateway) > 0  # the queue filled while the collector sat on a batch
    finally:
        slow.close()


def test_a_refusing_collector_counts_the_spans_it_refused(
    start_gateway: GatewayFactory, stub: Stub
) -> None:
    refusing = Collector()
    refusing.status = 400  # not retried by the exporter
    try:
        gateway = exporting(start_gateway, stub, refusing.endpoint)
        timed_requests(gateway, 5)
        assert wait_for_errors(gateway, 10) == 10 and refusing.requests >= 1
    finally:
        refusing.close()


def test_without_an_endpoint_the_sdk_is_not_imported(tmp_path: object) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env |= {"ROUTES_FILE": str(ROOT / "routes.yaml"), "ADMIN_ADDR": "off", "RELOAD": "off"}
    script = (
        "import sys, config.asgi; "
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith('opentelemetry')}))"
    )
    out = subprocess.run(
        [PYTHON, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9"
    out = subprocess.run(
        [PYTHON, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "['opentelemetry']"
    env["OTEL_SDK_DISABLED"] = "true"  # OpenTelemetry's own off switch
    out = subprocess.run(
        [PYTHON, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_TRACES_SAMPLER_ARG", "half"),
        ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
        ("OTEL_BSP_SCHEDULE_DELAY", "soon"),
    ],
)
def test_a_bad_otel_setting_stops_the_gateway_in_one_line(name: str, value: str) -> None:
    port = free_port()
    env = {**os.environ, "ROUTES_FILE": str(ROOT / "routes.yaml"), "ADMIN_ADDR": "off", name: value}
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9"
    out = subprocess.run(
        [PYTHON, "-m", "uvicorn", "config.asgi:application", "--port", str(port)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode != 0
    assert f"setting {name}:" in out.stderr and "Traceback" not in out.stderr
