"""Retries, circuit breakers and limits through the real gateway process
(SPEC 1, 3.1, 3.2; issue 4)."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from tests.integration.conftest import Gateway, GatewayFactory, Stub, free_port

ROUTES = """
version: 1
settings:
  max_response_size: 1MiB
upstreams:
  retried: {url: "${STUB}", timeout: 1s, retries: {attempts: 3, backoff: 20ms}}
  breaker: {url: "${STUB}", circuit_breaker: {failures: 3, cooldown: 1s}}
  dead: {url: "http://127.0.0.1:${DEAD_PORT}", timeout: 500ms, circuit_breaker: {failures: 2, cooldown: 30s}}
  stub: {url: "${STUB}"}
routes:
  - name: flaky-get
    path: /flaky-get/{id}
    backends: [{upstream: retried, path: "/flaky/{id}/2", key: answer}]
  - name: flaky-post
    path: /flaky-post/{id}
    methods: [POST]
    backends: [{upstream: retried, path: "/flaky/{id}/2", key: answer, method: POST}]
  - name: flaky-proxy
    path: /proxy/{rest:path}
    methods: [GET, POST]
    proxy: {upstream: retried, path: "/{rest}"}
  - name: breaker
    path: /breaker
    backends: [{upstream: breaker, path: /flaky/cb/5, key: answer}]
  - name: dead
    path: /dead
    backends: [{upstream: dead, path: /x, key: gone}]
  - name: big
    path: /big/{kind}/{n}
    backends: [{upstream: stub, path: "/{kind}/{n}", key: big}]
"""


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, stub: Stub) -> Gateway:
    return start_gateway(
        ROUTES,
        STUB=stub.url,
        DEAD_PORT=str(free_port()),
        CLIENT_HEADER_TIMEOUT="2",
        CLIENT_BODY_TIMEOUT="1",
    )


def access_line(gw: Gateway, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        for line in gw.process.output().splitlines():
            if request_id in line and line.startswith("{") and '"duration_ms"' in line:
                return json.loads(line)
        time.sleep(0.05)
    raise AssertionError(f"no access log line for {request_id}")


def test_flaky_upstream_succeeds_on_the_third_attempt(gw: Gateway, stub: Stub) -> None:
    response = gw.get("/flaky-get/a1")
    assert response.status_code == 200, response.text
    assert response.json() == {"answer": {"ok": True, "attempt": 3}}
    (backend,) = access_line(gw, response.headers["x-request-id"])["backends"]
    assert backend["attempts"] == 3 and backend["outcome"] == "ok" and backend["status"] == 200


def test_post_is_never_retried(gw: Gateway, stub: Stub) -> None:
    response = gw.request("POST", "/flaky-post/p1", content=b"{}")
    assert response.status_code == 502
    assert stub.count("/flaky/p1/2") == 1
    proxied = gw.request("POST", "/proxy/flaky/p2/2", content=b"{}")
    assert proxied.status_code == 503  # the upstream's own answer, passed through
    assert stub.count("/flaky/p2/2") == 1


def test_proxy_get_is_retried(gw: Gateway, stub: Stub) -> None:
    response = gw.get("/proxy/flaky/g1/2")
    assert response.status_code == 200 and response.json()["attempt"] == 3
    assert access_line(gw, response.headers["x-request-id"])["backends"][0]["attempts"] == 3


def test_circuit_opens_then_half_opens(gw: Gateway, stub: Stub) -> None:
    assert [gw.get("/breaker").status_code for _ in range(3)] == [
        502,
        502,
        502,
    ]  # 503s from the upstream
    assert stub.count("/flaky/cb/5") == 3
    opened = gw.get("/breaker")
    assert opened.status_code == 503 and opened.json()["type"].endswith("backend-circuit-open")
    assert stub.count("/flaky/cb/5") == 3  # open: the network was not touched
    assert 'gateway_circuit_open{upstream="breaker"} 1.0' in gw.admin_get("/metrics").text
    time.sleep(1.1)
    assert gw.get("/breaker").status_code == 502  # half-open: one trial, which fails...
    assert gw.get("/breaker").status_code == 503  # ...and opens it again
    assert stub.count("/flaky/cb/5") == 4
    time.sleep(1.1)
    assert gw.get("/breaker").status_code == 502  # the 5th and last failure
    time.sleep(1.1)
    assert gw.get("/breaker").status_code == 200  # the trial succeeds: closed
    assert gw.get("/breaker").status_code == 200
    assert 'gateway_circuit_open{upstream="breaker"} 0.0' in gw.admin_get("/metrics").text


def test_dead_upstream_opens_its_circuit(gw: Gateway) -> None:
    assert [gw.get("/dead").status_code for _ in range(2)] == [502, 502]
    started = time.perf_counter()
    assert gw.get("/dead").status_code == 503
    assert time.perf_counter() - started < 0.2


@pytest.mark.parametrize("kind", ["big", "bigchunked"])
def test_oversized_body_fails_the_backend_without_growing(gw: Gateway, kind: str) -> None:
    rss_before = gw.process.status("VmRSS")
    response = gw.get(f"/big/{kind}/{50 * 1024 * 1024}")
    assert response.status_code == 502
    assert "max_response_size" in response.json()["detail"]
    grown_mb = (gw.process.status("VmHWM") - rss_before) / 1024
    assert grown_mb < 10, f"grew by {grown_mb:.0f} MB"


def test_headers_sent_one_byte_a_second_are_cut_off(gw: Gateway) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", gw.process.port), timeout=10) as sock:
        received = b""
        for byte in b"GET /dead HTTP/1.1\r\nHost: x\r\nX-Slow: 1234567890\r\n\r\n":
            try:
                sock.sendall(bytes([byte]))
                time.sleep(1)
                sock.setblocking(False)
                received += sock.recv(4096)
            except BlockingIOError:
                pass
            except OSError:
                break
            finally:
                sock.setblocking(True)
            if received or time.monotonic() - started > 8:
                break
    assert received.startswith(b"HTTP/1.1 408"), received
    assert time.monotonic() - started < 5


def test_idle_connection_without_a_request_is_closed(gw: Gateway) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", gw.process.port), timeout=10) as sock:
        assert sock.recv(4096).startswith(b"HTTP/1.1 408")
        assert sock.recv(4096) == b""
    assert time.monotonic() - started < 4


def test_slow_body_is_cut_off(gw: Gateway) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", gw.process.port), timeout=10) as sock:
        sock.sendall(b"POST /proxy/echo/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        sock.sendall(b"x")
        response = sock.recv(65536)
    assert response.startswith(b"HTTP/1.1 408"), response[:100]
    assert b"application/problem+json" in response
    assert time.monotonic() - started < 4
