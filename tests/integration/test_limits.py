"""Limits against hostile clients and upstreams (SPEC 3.10), through the real
gateway process, a misbehaving upstream process (tests/hostile.py) and raw
sockets."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.hostile import EXTRA_UPSTREAMS, HOSTILE_ROUTES, MODES, flood, hammer
from tests.integration.conftest import Gateway, GatewayFactory, Stub, free_port, start_process
from tests.processes import PYTHON, Process

ROUTES = (
    HOSTILE_ROUTES.replace(
        EXTRA_UPSTREAMS,
        '  stub: {url: "${STUB}", timeout: 5s}\n'
        '  single: {url: "${HOSTILE}", timeout: 3s, max_connections: 1}\n',
    )
    + """
  - name: one-connection
    path: /one/{rest:path}
    methods: [GET, HEAD]
    proxy: {upstream: single, path: "/{rest}"}
  - name: objects
    path: /objects/{n}
    backends: [{upstream: stub, path: "/objects/{n}", key: r}]
  - name: four
    path: /four/{n}
    backends:
      - {upstream: stub, path: "/objects/{n}", key: a, allow: [id]}
      - {upstream: stub, path: "/objects/{n}", key: b, allow: [id]}
      - {upstream: stub, path: "/objects/{n}", key: c, allow: [id]}
      - {upstream: stub, path: "/objects/{n}", key: d, allow: [id]}
  - name: objects-optional
    path: /objects-optional/{n}
    backends:
      - {upstream: stub, path: "/users/1", key: user}
      - {upstream: stub, path: "/objects/{n}", key: r, required: false}
"""
)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    port, stock = free_port(), free_port()
    log = tmp_path_factory.mktemp("hostile") / "hostile.log"
    process = start_process(
        [PYTHON, "-m", "tests.hostile", "--port", str(port), "--stock-port", str(stock)],
        port,
        log,
        ready_path="/ok/ready",
    )
    yield f"http://127.0.0.1:{port}", f"http://127.0.0.1:{stock}"
    process.stop()


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, hostile: tuple[str, str], stub: Stub) -> Gateway:
    return start_gateway(
        ROUTES,
        HOSTILE=hostile[0],
        STOCK=hostile[1],
        STUB=stub.url,
        MAX_REQUEST_LINE="2KiB",
        MAX_REQUEST_HEADERS="8KiB",
        MEMORY_BUDGET="8MiB",
    )


@pytest.mark.parametrize("mode", MODES)
def test_no_client_ever_gets_another_clients_answer(gw: Gateway, mode: str) -> None:
    for kind in ("proxy", "aggregate"):
        if kind == "aggregate" and "head" in mode:
            continue  # aggregate backends send GET
        if kind == "proxy" and mode == "gzip":
            continue  # proxy routes pass bodies as they come: decoding is the client's
        wrong = asyncio.run(hammer(gw.url, mode, kind, 300))
        assert wrong == [], wrong[:5]
    assert "Traceback" not in gw.process.output()


def test_misbehaving_answers_get_their_own_answer_or_502(gw: Gateway) -> None:
    assert gw.get("/p/two/mine").json() == {"marker": "mine"}
    no_content = gw.get("/p/204/mine")
    assert no_content.status_code == 204 and "content-length" not in no_content.headers
    not_modified = gw.get("/p/304/mine")  # had a Content-Length and a body: neither passes
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert gw.request("HEAD", "/stock/x/mine").status_code == 200
    switched = gw.get("/p/switch/mine")
    assert switched.status_code == 502
    assert switched.headers["content-type"] == "application/problem+json"
    assert gw.get("/a/switch/mine").status_code == 502


@pytest.mark.parametrize("mode", ["slowhead", "slow204", "slow304"])
def test_a_late_body_never_stalls_the_requests_queued_behind_it(gw: Gateway, mode: str) -> None:
    """One upstream connection; three answers that end at their headers while
    a body follows 30 ms later, three innocent requests, sent a few ms apart:
    every one is answered at once, none waits for the 3 s upstream timeout."""

    async def run() -> list[tuple[int, str | None]]:
        async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:

            async def one(method: str, path: str) -> tuple[int, str | None]:
                response = await client.request(method, path)
                return response.status_code, response.content.decode() or None

            calls = []
            for i in range(3):
                method = "HEAD" if mode == "slowhead" else "GET"
                calls.append(asyncio.create_task(one(method, f"/one/{mode}/bad{i}")))
                await asyncio.sleep(0.003)
                calls.append(asyncio.create_task(one("GET", f"/one/ok/ok{i}")))
                await asyncio.sleep(0.003)
            return await asyncio.gather(*calls)

    for _ in range(3):
        started = time.monotonic()
        results = asyncio.run(run())
        assert time.monotonic() - started < 2
        status = {"slowhead": 200, "slow204": 204, "slow304": 304}[mode]
        assert results[0::2] == [(status, None)] * 3
        assert results[1::2] == [(200, f'{{"marker":"ok{i}"}}') for i in range(3)]


def test_an_endless_upstream_header_block_fails_the_call(gw: Gateway) -> None:
    rss_before = gw.process.status("VmRSS")
    started = time.monotonic()
    proxied = gw.get("/p/headers/x")
    assert proxied.status_code == 502 and proxied.json()["type"].endswith("backend-connect")
    optional = gw.get("/o/headers/x")
    assert optional.status_code == 200 and optional.headers["x-gateway-completed"] == "false"
    assert set(optional.json()) == {"ok"}
    assert time.monotonic() - started < 3
    assert (gw.process.status("VmRSS") - rss_before) / 1024 < 20  # MB: stopped at 16 KiB


def test_an_undecodable_body_is_a_backend_failure_not_a_500(gw: Gateway) -> None:
    required = gw.get("/a/gzip/x")
    assert required.status_code == 502 and required.json()["backend"] == "r"
    assert "compressed" in required.json()["detail"]
    optional = gw.get("/o/gzip/x")
    assert optional.status_code == 200 and optional.headers["x-gateway-completed"] == "false"
    assert "Traceback" not in gw.process.output()


# --- memory -------------------------------------------------------------------
def test_memory_budget_refuses_what_would_pass_it(gw: Gateway) -> None:
    before = metric(gw, "gateway_memory_budget_rejections_total")
    assert gw.get("/objects/100").status_code == 200  # small: fits
    refused = gw.get("/objects/100000")  # ~3 MB of bytes, ~30 MB parsed: past 8 MiB
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["backend"] == "r"
    left_out = gw.get("/objects-optional/100000")
    assert left_out.status_code == 200 and left_out.headers["x-gateway-completed"] == "false"
    assert set(left_out.json()) == {"user"}
    assert metric(gw, "gateway_memory_budget_rejections_total") == before + 2
    assert gw.get("/objects/100").status_code == 200  # nothing was kept


def test_concurrent_aggregation_stays_within_the_budget(gw: Gateway) -> None:
    """16 at once, each body ~0.6 MB of small objects (~6 MB once parsed), an
    8 MiB budget: some are answered, the rest refused, none grows the process
    by much more than the budget."""
    baseline = gw.process.status("VmRSS")

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
            return await asyncio.gather(*(client.get("/objects/20000") for _ in range(16)))

    peak = 0
    for _ in range(3):
        responses = asyncio.run(run())
        peak = max(peak, gw.process.status("VmHWM"))
        for response in responses:
            assert response.status_code in (200, 503)
            if response.status_code == 503:
                assert response.headers["retry-after"] == "1"
        assert any(r.status_code == 200 for r in responses)
    assert (peak - baseline) / 1024 < 8 + 40  # MB: the budget plus the allocator's slack


def test_under_contention_requests_are_admitted_in_order(gw: Gateway) -> None:
    """Sixteen at once, each needing most of the budget (four parsed, shaped
    bodies): they used to take a little each and all run out (all 503).
    Admitted in order, the oldest finish and the rest are refused or wait."""

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
            return await asyncio.gather(*(client.get("/four/2500") for _ in range(16)))

    assert gw.get("/four/2500").status_code == 200  # one alone fits
    for _ in range(3):
        statuses = [r.status_code for r in asyncio.run(run())]
        assert set(statuses) <= {200, 503}
        assert statuses.count(200) >= 2, statuses
    assert metric(gw, "gateway_memory_budget_used_bytes") == 0
    assert metric(gw, "gateway_memory_budget_waiting") == 0


def metric(gw: Gateway, name: str) -> float:
    text = gw.admin_get("/metrics").text
    found = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


# --- clients ------------------------------------------------------------------
def raw_exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def problem(answer: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head.lower()
    assert b"connection: close" in head.lower()
    return int(head.split(b" ")[1]), orjson.loads(body)


def test_a_long_request_line_is_414_and_closes(gw: Gateway) -> None:
    ok = gw.get("/a/ok/" + "m" * 1900)
    assert ok.status_code == 200
    status, body = problem(
        raw_exchange(gw.process.port, b"GET /a/ok/" + b"m" * 3000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    )
    assert status == 414 and body["status"] == 414 and body["request_id"]


def test_a_large_header_block_is_431_and_closes(gw: Gateway) -> None:
    assert gw.get("/a/ok/h", headers={f"X-H{i}": "v" * 100 for i in range(60)}).status_code == 200
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(100))
    status, body = problem(
        raw_exchange(gw.process.port, b"GET /a/ok/h HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    )
    assert status == 431 and body["type"].endswith("request-header-fields-too-large")


def healthz_latencies(url: str, stop: threading.Event) -> list[float]:
    latencies = []
    with httpx.Client(base_url=url, timeout=10) as client:
        while not stop.is_set():
            started = time.perf_counter()
            assert client.get("/healthz").status_code == 200
            latencies.append(time.perf_counter() - started)
            time.sleep(0.005)
    return latencies


@pytest.mark.parametrize("where", ["target", "headers"])
def test_one_client_sending_50_mb_does_not_slow_the_others(gw: Gateway, where: str) -> None:
    stop = threading.Event()
    result: list[list[float]] = []
    probe = threading.Thread(target=lambda: result.append(healthz_latencies(gw.url, stop)))
    probe.start()
    time.sleep(0.2)
    try:
        opening = b"GET /" if where == "target" else b"GET / HTTP/1.1\r\nX-Flood: "
        answer = flood(gw.process.port, opening, 50_000_000)
    finally:
        time.sleep(0.2)
        stop.set()
        probe.join()
    assert answer.startswith(b"HTTP/1.1 414" if where == "target" else b"HTTP/1.1 431"), answer[:80]
    latencies = sorted(result[0])
    assert len(latencies) > 10
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    assert p99 < 0.05, (
        f"healthz p99 {p99 * 1000:.1f} ms (median {statistics.median(latencies) * 1000:.1f})"
    )


def test_settings_change_the_limits(
    gw: Gateway, start_gateway: GatewayFactory, hostile: tuple[str, str], stub: Stub
) -> None:
    default = start_gateway(ROUTES, HOSTILE=hostile[0], STOCK=hostile[1], STUB=stub.url)
    target = "/a/ok/" + "m" * 3000  # over the 2 KiB of `gw`, under the default 8 KiB
    assert default.get(target).status_code == 200
    status, _ = problem(
        raw_exchange(gw.process.port, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target.encode())
    )
    assert status == 414
    default.process.stop()


def test_process_survives_everything_above(gw: Gateway) -> None:
    assert gw.get("/healthz").status_code == 200
    assert "Traceback" not in gw.process.output()


__all__ = ["Process"]
