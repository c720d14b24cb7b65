"""W3C trace context through a real gateway (SPEC 3.13, first part): continued
or started, a span of its own for every upstream call, never the client's
traceparent passed on, trace_id in the access log."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.integration.conftest import Gateway, GatewayFactory, Stub

ROUTES = """
version: 1
upstreams:
  stub: {url: "${STUB}", timeout: 2s}
  live: {url: "${LIVE}", timeout: 2s}
settings:
  forward_headers: [traceparent, Accept-Language]
routes:
  - name: agg
    path: /agg
    backends:
      - {upstream: stub, path: /echo/a, key: a}
      - {upstream: stub, path: /echo/b, key: b}
  - name: pass
    path: /pass/{rest:path}
    proxy: {upstream: stub, path: "/echo/{rest}"}
  - name: chat
    path: /chat
    websocket: {upstream: live, path: /ws/echo/chat}
"""
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
INCOMING = f"00-{TRACE}-{PARENT}-01"


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, stub: Stub, live: Stub) -> Gateway:
    return start_gateway(ROUTES, STUB=stub.url, LIVE=live.url)


def header(echo: dict[str, Any], name: str) -> str | None:
    values = [v for n, v in echo["headers"] if n == name]
    assert len(values) <= 1, values  # never the client's and the gateway's both
    return values[0] if values else None


def parts(traceparent: str | None) -> tuple[str, str]:
    assert traceparent is not None
    version, trace_id, span_id, flags = traceparent.split("-")
    assert version == "00" and flags in ("00", "01")
    return trace_id, span_id


def test_each_backend_call_is_a_child_span_of_the_callers_trace(gw: Gateway) -> None:
    body = gw.get("/agg", headers={"traceparent": INCOMING, "tracestate": "vendor=1"}).json()
    (trace_a, span_a), (trace_b, span_b) = (
        parts(header(body[k], "traceparent")) for k in ("a", "b")
    )
    assert trace_a == trace_b == TRACE
    assert len({span_a, span_b, PARENT}) == 3  # its own span each, never the client's
    assert header(body["a"], "tracestate") == "vendor=1"


def test_a_proxied_request_never_carries_the_clients_traceparent(gw: Gateway) -> None:
    echo = gw.get("/pass/x", headers={"traceparent": INCOMING}).json()
    trace_id, span_id = parts(header(echo, "traceparent"))
    assert trace_id == TRACE and span_id != PARENT


@pytest.mark.parametrize("incoming", [None, "nonsense", f"00-{'0' * 32}-{PARENT}-01"])
def test_anything_but_a_valid_traceparent_starts_a_trace(gw: Gateway, incoming: str | None) -> None:
    request_id = f"trace-new-{len(incoming or '')}"
    headers = {"X-Request-ID": request_id} | ({"traceparent": incoming} if incoming else {})
    echo = gw.get("/pass/y", headers=headers).json()
    trace_id, _ = parts(header(echo, "traceparent"))
    assert trace_id != TRACE and trace_id != "0" * 32
    time.sleep(0.2)
    (line,) = [
        json.loads(entry)
        for entry in gw.process.output().splitlines()
        if entry.startswith("{") and f'"{request_id}"' in entry
    ]
    assert line["trace_id"] == trace_id


async def test_the_upstream_websocket_handshake_carries_a_child_span(gw: Gateway) -> None:
    url = "ws://" + gw.url.removeprefix("http://") + "/chat"
    async with connect(url, additional_headers={"traceparent": INCOMING}) as ws:
        await ws.send("hello")
        hello = json.loads(await ws.recv())
    trace_id, span_id = parts(header(hello, "traceparent"))
    assert trace_id == TRACE and span_id != PARENT
