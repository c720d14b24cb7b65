"""make bench, upstream traffic (issue 22): several targets, mirroring, a
target killed under load.

  UT10  scenario A through an upstream of 10 targets (10 stub ports,
        least_request)                                         UT10 / A    <= 1.03
  UT10o the same 10 targets on one address (one pool): what
        the balancer itself costs                              reported
  UM    scenario A mirrored 100% to a second stub (its own
        process), paced at ~700 req/s: the client's p99 and
        the CPU per request, beside the same route unmirrored  p99 UM / A  <= 1.10
  UK    2 targets (a stub process each) under 64 connections;
        one is killed 3 s in: the client errors, and the time
        from the kill to its ejection (retries off, then on)   retries on: 0 errors

UT10 runs side by side with A, ROUNDS times, order alternating
(bench/sidebyside.py); UM and A run in turn on one gateway per round. Each
verdict is the median of the per-round ratios.
"""

from __future__ import annotations

import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from bench.sidebyside import Load, judged_pairs

if TYPE_CHECKING:
    from bench.__main__ import Bench, Process
    from bench.limits import Check

__all__ = ["run_all"]

KILL_AFTER = 3.0
PACED = 8  # UM's connections
PAUSE_MS = 10  # each one's pause between requests: about 700 req/s in all
KILL_RUN = 8.0


def _stubs(start: Callable[..., Process], free_port: Callable[[], int], n: int) -> Process:
    from bench.__main__ import LOAD_CPU, pinned

    ports = [free_port() for _ in range(n)]
    command = [
        sys.executable,
        "-m",
        "bench.upstream",
        *(a for p in ports for a in ("--port", str(p))),
    ]
    process = start(pinned(LOAD_CPU, command), ports[0], "/")
    process.ports = ports  # type: ignore[attr-defined]  # every port it serves
    return process


def run_all(
    bench: Bench,
    start: Callable[..., Process],
    free_port: Callable[[], int],
    load_cpu: str,
    rounds: int,
) -> list[Check]:
    from bench.__main__ import upstreams_yaml

    ten = _stubs(start, free_port, 10)
    shadow = _stubs(start, free_port, 1)
    checks: list[Check] = []
    try:
        targets = ", ".join(
            f"{{url: 'http://127.0.0.1:{p}', name: t{i}}}"
            for i, p in enumerate(ten.ports)  # type: ignore[attr-defined]
        )
        one_address = ", ".join(
            f"{{url: 'http://127.0.0.1:{ten.port}', name: t{i}}}" for i in range(10)
        )
        routes = bench.workdir / "routes-traffic.yaml"
        routes.write_text(
            f"""version: 1
settings: {{timeout: 30s}}
upstreams:
{upstreams_yaml(bench.stub_ports)}
  ten: {{targets: [{targets}], timeout: 30s, max_connections: 10000}}
  ten-one: {{targets: [{one_address}], timeout: 30s, max_connections: 10000}}
  shadow: {{url: 'http://127.0.0.1:{shadow.port}', timeout: 30s, max_connections: 10000}}
routes:
  - name: proxy
    path: /proxy/{{rest:path}}
    proxy: {{upstream: u0, path: "/{{rest}}"}}
  - name: ten
    path: /ten/{{rest:path}}
    proxy: {{upstream: ten, path: "/{{rest}}"}}
  - name: ten-one
    path: /ten-one/{{rest:path}}
    proxy: {{upstream: ten-one, path: "/{{rest}}"}}
  - name: mirrored
    path: /mirrored/{{rest:path}}
    proxy: {{upstream: u0, path: "/{{rest}}"}}
    mirror: {{upstream: shadow, max_in_flight: 1000}}
"""
        )
        pairs = [
            (
                Load("UT10", "A, upstream of 10 targets", "/ten/users/1"),
                Load("A", "A", "/proxy/users/1"),
                1.03,
            ),
            (  # the balancer alone: ten targets, one address (one pool)
                Load("UT10o", "A, 10 targets on one address", "/ten-one/users/1"),
                Load("A", "A", "/proxy/users/1"),
                0.0,
            ),
        ]
        checks += judged_pairs(bench, routes, pairs, load_cpu, rounds)
        checks += _mirrored(bench, routes, load_cpu, rounds)
    finally:
        ten.stop()
        shadow.stop()
    checks += _killed(bench, start, free_port, load_cpu)
    return checks


def _mirrored(bench: Bench, routes: Path, load_cpu: str, rounds: int) -> list[Check]:
    """UM: the client's p99 with every request mirrored, beside the same
    gateway's p99 without, at a steady rate well below saturation (PACED
    connections, each pausing PAUSE_MS between requests): at saturation any
    extra CPU shows as queueing, and the question is whether the mirror sits
    on the client's path. Both routes on one gateway per round, in turn."""
    from bench.__main__ import SECONDS, Row
    from bench.wrk import WrkResult, run_wrk

    script = bench.workdir / "paced.lua"
    script.write_text(f"function delay()\n  return {PAUSE_MS}\nend\n")
    loads = {"UM": "/mirrored/users/1", "A": "/proxy/users/1"}
    p99s: list[float] = []
    cpus: list[float] = []
    last: dict[str, tuple[WrkResult, float]] = {}
    for round_ in range(max(rounds, 5)):
        gateway = bench.gateway(routes=routes)
        try:
            order = ["UM", "A"] if round_ % 2 == 0 else ["A", "UM"]
            for key in order:
                url = gateway.url + loads[key]
                run_wrk(url, connections=PACED, seconds=2, cpus=load_cpu, script=str(script))
                before = gateway.cpu_seconds()
                result = run_wrk(
                    url, connections=PACED, seconds=SECONDS, cpus=load_cpu, script=str(script)
                )
                used = gateway.cpu_seconds() - before
                last[key] = (result, used / max(result.requests, 1) * 1000)
        finally:
            gateway.stop()
        (m, mc), (b, bc) = last["UM"], last["A"]
        p99s.append(m.p99_ms / b.p99_ms)
        cpus.append(mc / bc)
        sys.stderr.write(
            f"  UM vs A round {round_ + 1}: p99 {m.p99_ms:.2f} vs {b.p99_ms:.2f} ms at"
            f" {m.rps:,.0f} req/s, CPU {mc:.3f} vs {bc:.3f} s / 1k\n"
        )
    for key, label in (("UM", "A, mirrored 100%, paced"), ("A", "A, paced (beside UM)")):
        result, cpu = last[key]
        bench.add(Row(key, label, "gateway", PACED, result, cpu), report=False)
    p99, cpu = statistics.median(p99s), statistics.median(cpus)
    note = f"{min(p99s):.2f}-{max(p99s):.2f}, {len(p99s)} rounds"
    return [
        ("UM: client p99 mirrored 100% vs not", f"{p99:.2f}x ({note})", "<= 1.10x", p99 <= 1.10),
        (
            "UM: CPU per request mirrored 100% vs not (reported)",
            f"{cpu:.2f}x (the mirror is a second upstream call)",
            "reported",
            True,
        ),
    ]


def _killed(
    bench: Bench, start: Callable[..., Process], free_port: Callable[[], int], load_cpu: str
) -> list[Check]:
    """UK: one of two targets killed mid-run, retries off then on."""
    return [_kill_one(bench, start, free_port, load_cpu, retries) for retries in (1, 2)]


def _kill_one(
    bench: Bench,
    start: Callable[..., Process],
    free_port: Callable[[], int],
    load_cpu: str,
    retries: int,
) -> Check:
    """wrk against two targets; one SIGKILLed KILL_AFTER seconds in; the
    admin listener's gauge polled for its ejection."""
    from bench.wrk import WrkResult, run_wrk

    stubs = [_stubs(start, free_port, 1) for _ in range(2)]
    admin = free_port()
    targets = ", ".join(
        f"{{url: 'http://127.0.0.1:{s.port}', name: s{i}}}" for i, s in enumerate(stubs)
    )
    routes = bench.workdir / f"routes-killed-{retries}.yaml"
    routes.write_text(
        f"""version: 1
upstreams:
  pair:
    targets: [{targets}]
    timeout: 2s
    max_connections: 10000
    retries: {{attempts: {retries}, backoff: 5ms}}
routes:
  - {{name: pair, path: "/pair/{{rest:path}}", proxy: {{upstream: pair, path: "/{{rest}}"}}}}
"""
    )
    gateway = bench.gateway(routes=routes, env={"ADMIN_ADDR": f"127.0.0.1:{admin}"})
    ejected: list[float] = []
    results: list[WrkResult] = []

    def load() -> None:
        url = gateway.url + "/pair/users/1"
        results.append(run_wrk(url, connections=64, seconds=KILL_RUN, cpus=load_cpu))

    try:
        thread = threading.Thread(target=load)
        thread.start()
        time.sleep(KILL_AFTER)
        killed_at = time.monotonic()
        stubs[1].popen.send_signal(signal.SIGKILL)
        gauge = 'gateway_upstream_target_healthy{target="s1",upstream="pair"} 0.0'
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < killed_at + KILL_RUN and not ejected:
                if gauge in client.get(f"http://127.0.0.1:{admin}/metrics").text:
                    ejected.append(time.monotonic() - killed_at)
                time.sleep(0.005)
        thread.join()
    finally:
        gateway.stop()
        for stub in stubs:
            stub.stop()
    wrk = results[0]
    when = f"ejected {ejected[0] * 1000:.0f} ms after the kill" if ejected else "never ejected"
    label = "retries on (2 attempts)" if retries > 1 else "retries off"
    return (
        f"UK: a target killed under load, {label}",
        f"{wrk.errors} client errors of {wrk.requests:,} requests; {when}",
        "0 errors" if retries > 1 else "reported",
        bool(ejected) and (wrk.errors == 0 or retries == 1),
    )
