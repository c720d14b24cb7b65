"""make bench: the limits against hostile clients and upstreams (README, Limits).

H1  misbehaving upstreams: 10,000 requests per mode, proxy and aggregate,
    every client with a unique marker: answers that were somebody else's
H2  one client sends 50 MB of request target (then of headers): /healthz p99
    of another client meanwhile
H3  the in-process rate limiter with 10 and with 1,000,000 keys: decision
    cost, RSS growth, and how many buckets are left once all refilled
H4  four backends x 10 MB of small JSON objects, 16 requests at once, default
    MEMORY_BUDGET: peak RSS and the answers' statuses
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from tests.hostile import EXTRA_UPSTREAMS, HOSTILE_ROUTES, MODES, flood, hammer

if TYPE_CHECKING:
    from bench.__main__ import Bench, Process

FRAMING_REQUESTS = int(os.environ.get("BENCH_FRAMING_REQUESTS", "10000"))
type Check = tuple[str, str, str, bool]


def framing(
    bench: Bench, start: Callable[..., Process], free_port: Callable[[], int]
) -> list[Check]:
    port, stock = free_port(), free_port()
    command = [
        sys.executable,
        "-m",
        "tests.hostile",
        "--port",
        str(port),
        "--stock-port",
        str(stock),
    ]
    hostile = start(command, port, "/ok/ready")
    routes = bench.workdir / "hostile.yaml"
    routes.write_text(HOSTILE_ROUTES.replace(EXTRA_UPSTREAMS, ""))
    gateway = bench.gateway(
        {"HOSTILE": f"http://127.0.0.1:{port}", "STOCK": f"http://127.0.0.1:{stock}"}, routes=routes
    )
    wrong: Counter[str] = Counter()
    total = 0
    try:
        for mode in MODES:
            for kind in ("proxy", "aggregate"):
                if (kind == "aggregate" and "head" in mode) or (kind == "proxy" and mode == "gzip"):
                    continue
                found = asyncio.run(hammer(gateway.url, mode, kind, FRAMING_REQUESTS))
                total += FRAMING_REQUESTS
                wrong[f"{mode}/{kind}"] = len(found)
                sys.stderr.write(
                    f"  H1   {mode}/{kind}: {len(found)} wrong of {FRAMING_REQUESTS}\n"
                )
    finally:
        gateway.stop()
        hostile.stop()
    bad = {k: v for k, v in wrong.items() if v}
    value = f"{sum(bad.values())} of {total:,} over {len(wrong)} mode/route pairs" + (
        f" ({bad})" if bad else ""
    )
    return [("H1: answers that were another client's (or planted)", value, "0", not bad)]


def _healthz_p99(url: str, stop: threading.Event, out: list[float]) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        while not stop.is_set():
            started = time.perf_counter()
            client.get("/healthz")
            out.append(time.perf_counter() - started)
            time.sleep(0.002)


def url_flood(bench: Bench) -> list[Check]:
    gateway = bench.gateway()
    checks: list[Check] = []
    try:
        for where, opening, status in (
            ("target", b"GET /", b"414"),
            ("headers", b"GET / HTTP/1.1\r\nX-Flood: ", b"431"),
        ):
            latencies: list[float] = []
            stop = threading.Event()
            probe = threading.Thread(target=_healthz_p99, args=(gateway.url, stop, latencies))
            probe.start()
            time.sleep(0.3)
            answer = flood(gateway.port, opening, 50_000_000)
            time.sleep(0.3)
            stop.set()
            probe.join()
            latencies.sort()
            p99 = latencies[int(len(latencies) * 0.99)] * 1000
            ok = answer.startswith(b"HTTP/1.1 " + status) and p99 < 50
            checks.append(
                (
                    f"H2: /healthz p99 while one client sends 50 MB of {where}",
                    f"{p99:.1f} ms over {len(latencies)} probes; the sender got {answer[:12].decode()}",
                    "< 50 ms",
                    ok,
                )
            )
    finally:
        gateway.stop()
    return checks


def limiter_keys() -> list[Check]:
    """In this process, with the limiter's clock moved by hand."""
    from gateway.stores import limiter_memory as memory

    clock = [1000.0]
    real = memory.time.monotonic
    memory.time.monotonic = lambda: clock[0]  # type: ignore[assignment]
    try:
        costs = {}
        growth = 0.0
        left = 0
        for keys in (10, 1_000_000):
            limiter = memory.MemoryLimiter()
            gc.collect()
            before = _rss_mb()
            n = max(keys, 1_000_000)
            started = time.perf_counter()
            for i in range(n):
                limiter_decide(limiter, f"route:ip:2001:db8::{i % keys:x}")
                clock[0] += 1e-6
            costs[keys] = (time.perf_counter() - started) / n * 1e6
            if keys > 10:
                growth = _rss_mb() - before
                clock[0] += 3600
                for _ in range(200):  # housekeeping, once a "second"
                    limiter.housekeep()
                    clock[0] += 1
                left = len(limiter)
    finally:
        memory.time.monotonic = real  # type: ignore[assignment]
    ratio = costs[1_000_000] / costs[10]
    return [
        (
            "H3: rate-limit decision cost, 1,000,000 keys vs 10",
            f"{ratio:.2f}x ({costs[1_000_000]:.2f} vs {costs[10]:.2f} us)",
            "<= 2x",
            ratio <= 2,
        ),
        (
            "H3: RSS growth with 1,000,000 live buckets",
            f"{growth:.0f} MB",
            "< 300 MB",
            growth < 300,
        ),
        ("H3: buckets left once every one refilled", f"{left:,}", "0", left == 0),
    ]


def limiter_decide(limiter: object, key: str) -> None:
    coroutine = limiter.acquire(key, 10, 10 / 60)  # type: ignore[attr-defined]
    try:
        coroutine.send(None)  # never awaits: one step decides
    except StopIteration:
        return
    raise AssertionError("the in-process limiter awaited")


def _rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def _wave(url: str, path: str, count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        return await asyncio.gather(*(client.get(path) for _ in range(count)))


def big_aggregation(bench: Bench) -> list[Check]:
    routes = bench.workdir / "big.yaml"
    upstreams = "\n".join(
        f"  u{i}: {{url: 'http://127.0.0.1:{p}', timeout: 30s}}"
        for i, p in enumerate(bench.stub_ports)
    )
    routes.write_text(
        "version: 1\nsettings: {timeout: 60s}\nupstreams:\n" + upstreams + "\nroutes:\n"
        "  - name: big\n    path: /big\n    backends:\n"
        + "".join(
            f"      - {{upstream: u{i % 3}, path: /objects/10, key: k{i}}}\n" for i in range(4)
        )
        + "  - name: big-shaped\n    path: /big-shaped\n    backends:\n"
        + "".join(
            f"      - {{upstream: u{i % 3}, path: /objects/10, key: k{i}, allow: [id]}}\n"
            for i in range(4)
        )
    )
    checks: list[Check] = []
    for path in ("/big", "/big-shaped"):
        gateway = bench.gateway(routes=routes)
        try:
            statuses: Counter[str] = Counter()
            peak = 0

            for _ in range(3):
                for response in asyncio.run(_wave(gateway.url, path, 16)):
                    retry = response.headers.get("retry-after")
                    statuses[f"{response.status_code}" + ("+Retry-After" if retry else "")] += 1
                peak = max(peak, gateway.status_kb("VmHWM"))
        finally:
            gateway.stop()
        ok = peak < 1024 * 1024 and set(statuses) <= {"200", "503+Retry-After"}
        what = "spliced" if path == "/big" else "parsed and shaped"
        checks.append(
            (
                f"H4: 4 x 10 MB backends ({what}), 16 at once x 3",
                f"peak RSS {peak / 1024:.0f} MB; {dict(statuses)}",
                "< 1 GiB, 200 or 503",
                ok,
            )
        )
    return checks
