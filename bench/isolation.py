"""make bench: no client starves another (README, Limits).

I1  one client opens 100 event streams on an upstream (default max_connections
    100, so max_streams 50 and 20 per client) while another client's plain
    requests to the same upstream are timed: their p99, and how many of the
    streams were refused (503)
I2  twelve clients ask for a 17 MB aggregate answer and never read it
    (MEMORY_BUDGET=96MiB, as the red team ran it; CLIENT_SEND_TIMEOUT=5s so
    the run is short) while other clients ask for the same route: their
    statuses and latencies, and when the budget was given back
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from bench.__main__ import Bench, Process
    from bench.limits import Check

STREAMS = 100
NON_READERS = 12


def run_all(
    bench: Bench, start: Callable[..., Process], free_port: Callable[[], int], load_cpu: str
) -> list[Check]:
    from bench.__main__ import pinned

    live_port = free_port()
    live = start(
        pinned(load_cpu, [sys.executable, "-m", "bench.liveupstream", "--port", str(live_port)]),
        live_port,
        "/",
    )
    try:
        return streams_beside_requests(bench, live_port) + non_readers(bench, free_port)
    finally:
        live.stop()


# --- I1 ------------------------------------------------------------------------------
def streams_beside_requests(bench: Bench, live_port: int) -> list[Check]:
    routes = bench.workdir / "isolation-streams.yaml"
    routes.write_text(
        "version: 1\nupstreams:\n"
        f"  live: {{url: 'http://127.0.0.1:{live_port}', timeout: 5s}}\n"  # 100 connections
        "routes:\n"
        "  - {name: events, path: /events, proxy: {upstream: live, path: /sse, idle_timeout: 30s}}\n"
        "  - {name: plain, path: /plain, proxy: {upstream: live, path: /ok}}\n"
    )
    gateway = bench.gateway(routes=routes)
    try:
        opened, refused, latencies = asyncio.run(_streams_and_requests(gateway.url))
    finally:
        gateway.stop()
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    value = (
        f"{opened} streams open, {refused} refused (503); the other client's"
        f" {len(latencies):,} requests: p50 {statistics.median(latencies) * 1000:.1f} ms,"
        f" p99 {p99:.1f} ms, all 200"
    )
    ok = p99 < 50 and opened + refused == STREAMS and refused > 0
    return [
        (
            f"I1: {STREAMS} event streams from one client; another client's requests",
            value,
            "p99 < 50 ms",
            ok,
        )
    ]


async def _streams_and_requests(url: str) -> tuple[int, int, list[float]]:
    latencies: list[float] = []
    async with (
        httpx.AsyncClient(
            base_url=url, timeout=30, limits=httpx.Limits(max_connections=200)
        ) as hog,
        httpx.AsyncClient(base_url=url, timeout=30) as other,
        contextlib.AsyncExitStack() as held,
    ):
        opened = refused = 0
        for _ in range(STREAMS):
            response = await held.enter_async_context(hog.stream("GET", "/events"))
            if response.status_code == 200:
                opened += 1
            else:
                refused += 1
        until = time.monotonic() + 5
        while time.monotonic() < until:
            started = time.perf_counter()
            response = await other.get("/plain")
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200, response.status_code
    return opened, refused, latencies


# --- I2 ------------------------------------------------------------------------------
def non_readers(bench: Bench, free_port: Callable[[], int]) -> list[Check]:
    routes = bench.workdir / "isolation-big.yaml"
    upstreams = "\n".join(
        f"  u{i}: {{url: 'http://127.0.0.1:{p}', timeout: 30s}}"
        for i, p in enumerate(bench.stub_ports)
    )
    # Four backends of small objects, spliced: a ~17 MB answer.
    routes.write_text(
        "version: 1\nsettings: {timeout: 30s}\nupstreams:\n" + upstreams + "\nroutes:\n"
        "  - name: big\n    path: /big\n    backends:\n"
        + "".join(
            f"      - {{upstream: u{i % 3}, path: /objects/4, key: k{i}}}\n" for i in range(4)
        )
    )
    admin = free_port()
    gateway = bench.gateway(
        {"MEMORY_BUDGET": "96MiB", "CLIENT_SEND_TIMEOUT": "5s", "ADMIN_ADDR": f"127.0.0.1:{admin}"},
        routes=routes,
    )
    try:
        size = len(httpx.get(gateway.url + "/big", timeout=30).content)
        sockets = [_ask_and_never_read(gateway.port) for _ in range(NON_READERS)]
        time.sleep(1.0)
        statuses, latencies = asyncio.run(_others(gateway.url, seconds=10))
        released = _budget_released(admin)
        for sock in sockets:
            sock.close()
    finally:
        gateway.stop()
    ok_count = statuses.get(200, 0)
    value = (
        f"answer {size / 1e6:.1f} MB; other clients over 10 s: {dict(statuses)},"
        f" p50 {statistics.median(latencies):.2f} s, max {max(latencies):.2f} s;"
        f" budget given back {released}"
    )
    ok = ok_count > 0 and set(statuses) <= {200, 503}
    return [
        (
            f"I2: {NON_READERS} clients never read a 17 MB answer (96 MiB budget); others",
            value,
            "others get 200",
            ok,
        )
    ]


def _ask_and_never_read(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(b"GET /big HTTP/1.1\r\nHost: bench\r\n\r\n")
    return sock


async def _others(url: str, seconds: float) -> tuple[Counter[int], list[float]]:
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    until = time.monotonic() + seconds

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            while time.monotonic() < until:
                started = time.perf_counter()
                response = await http.get("/big")
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] += 1
                if response.status_code != 200:
                    await asyncio.sleep(float(response.headers.get("retry-after", "1")))

    await asyncio.gather(*(client() for _ in range(4)))
    return statuses, latencies


def _budget_released(admin: int) -> str:
    deadline = time.monotonic() + 20
    started = time.monotonic()
    while time.monotonic() < deadline:
        text = httpx.get(f"http://127.0.0.1:{admin}/metrics", timeout=5).text
        for line in text.splitlines():
            if line.startswith("gateway_memory_budget_used_bytes ") and float(line.split()[1]) == 0:
                return f"{time.monotonic() - started:.1f} s after the others stopped"
        time.sleep(0.2)
    return "not within 20 s"
