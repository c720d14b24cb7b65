"""make bench, HTTP/2 and gRPC (issue 23). BENCH_ONLY=http2.

  H1A0 H1C0  scenarios A and C over HTTP/1.1 (wrk, 64 connections), HTTP2=off
  H1A  H1C   the same with HTTP2=on (HTTP/1.1 then goes through the protocol
             switch: a cost per connection only)
  H2A  H2C   the same over HTTP/2 (h2load, 64 connections, one stream each),
             HTTP2=on: CPU per request beside HTTP/1.1              reported
  ZA   ZC    A and C over HTTP/1.1 on uvicorn's zttp protocol instead of
             httptools (bench/zttpgateway.py): the default protocol's decision
  H2M        one connection, 100 concurrent streams (h2load -m 100): every
             request answered                                      0 errors
  H2X-*      each HTTP/2 attack (bench/h2attack.py, reconnecting as it is cut
             off) beside a paced HTTP/1.1 client: that client's p99 under
             attack vs without, and the attacker cut off           p99 <= 2x
  GU         gRPC unary relay: h2load's req/s through the gateway vs straight
             to the same upstream (grpcio), the same client        >= 0.40

H1*, H2* and Z* run in turn on fresh gateways, ROUNDS times (order rotating),
and report each one's median CPU per 1,000 requests; GU alternates direct and
relayed runs, and judges the median of the per-round ratios.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from bench.h2load import H2Result, run_h2load
from bench.wrk import WrkResult, run_wrk

if TYPE_CHECKING:
    from bench.__main__ import Bench, Process
    from bench.limits import Check

__all__ = ["run_all"]

PATHS = {"A": "/proxy/users/1", "C": "/fast3"}
ATTACKS = ("rapid-reset", "continuation", "ping", "settings", "refused-streams", "zero-window")
PACED, PAUSE_MS = 8, 10
GRPC_FRAME = b"\x00\x00\x00\x00\x010"  # test.v1.Echo/Slow's "0": answer at once
GRPC_HEADERS = {"content-type": "application/grpc", "te": "trailers"}


def _as_wrk(result: H2Result) -> WrkResult:
    """h2load's report in the table's terms (it gives a mean, no percentiles)."""
    return WrkResult(result.requests, result.seconds, result.rps, math.nan, math.nan, result.errors)


def run_all(
    bench: Bench,
    start: Callable[..., Process],
    free_port: Callable[[], int],
    load_cpu: str,
    rounds: int,
) -> list[Check]:
    checks = _protocols(bench, start, free_port, load_cpu, rounds)
    checks += _streams(bench, load_cpu)
    checks += _attacks(bench, load_cpu)
    checks += _grpc(bench, start, free_port, load_cpu, rounds)
    return checks


# --- CPU per request: HTTP/1.1, HTTP/2, zttp -------------------------------------
def _protocols(
    bench: Bench,
    start: Callable[..., Process],
    free_port: Callable[[], int],
    load_cpu: str,
    rounds: int,
) -> list[Check]:
    from bench.__main__ import GATEWAY_CPU, SECONDS, WARMUP, Row, pinned

    def zttp() -> Process:
        port = free_port()
        command = pinned(GATEWAY_CPU, [sys.executable, "-m", "bench.zttpgateway", str(port)])
        env = {"ROUTES_FILE": str(bench.routes), "RELOAD": "false", "LOG_LEVEL": "WARNING"}
        return start(command, port, "/readyz", {**env, "ADMIN_ADDR": "off"})

    setups: dict[str, tuple[Callable[[], Process], bool]] = {  # name: (gateway, over HTTP/2)
        "H1{}0": (lambda: bench.gateway(), False),
        "H1{}": (lambda: bench.gateway(env={"HTTP2": "on"}), False),
        "H2{}": (lambda: bench.gateway(env={"HTTP2": "on"}), True),
        "Z{}": (zttp, False),
    }
    cpu: dict[str, list[float]] = {}
    last: dict[str, WrkResult] = {}
    names = list(setups)
    for round_ in range(rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            make, http2 = setups[name]
            gateway = make()
            try:
                for scenario, path in PATHS.items():
                    key, url = name.format(scenario), gateway.url + path
                    if http2:
                        run_h2load(url, clients=64, seconds=WARMUP, cpus=load_cpu)
                        before = gateway.cpu_seconds()
                        result = _as_wrk(
                            run_h2load(url, clients=64, seconds=SECONDS, cpus=load_cpu)
                        )
                    else:
                        run_wrk(url, connections=64, seconds=WARMUP, cpus=load_cpu)
                        before = gateway.cpu_seconds()
                        result = run_wrk(url, connections=64, seconds=SECONDS, cpus=load_cpu)
                    used = gateway.cpu_seconds() - before
                    cpu.setdefault(key, []).append(used / max(result.requests, 1) * 1000)
                    last[key] = result
                    sys.stderr.write(
                        f"  {key:5} round {round_ + 1}: {result.rps:,.0f} req/s,"
                        f" {cpu[key][-1]:.3f} CPU s / 1k\n"
                    )
            finally:
                gateway.stop()
    labels = {
        "H1{}0": "{}, HTTP/1.1, HTTP2=off",
        "H1{}": "{}, HTTP/1.1, HTTP2=on",
        "H2{}": "{}, HTTP/2 (h2load, 1 stream per connection)",
        "Z{}": "{}, HTTP/1.1 on uvicorn's zttp",
    }
    median = {key: statistics.median(values) for key, values in cpu.items()}
    for name, label in labels.items():
        for scenario in PATHS:
            key = name.format(scenario)
            row = Row(key, label.format(scenario), "gateway", 64, last[key], median[key])
            bench.add(row, report=False)
    checks: list[Check] = []
    for scenario in PATHS:
        base = median[f"H1{scenario}0"]
        for key, what in ((f"H2{scenario}", "HTTP/2"), (f"H1{scenario}", "HTTP/1.1, HTTP2=on")):
            checks.append(
                (
                    f"{key}: CPU per request over {what} vs HTTP/1.1 (reported)",
                    f"{median[key] / base:.2f}x ({median[key]:.3f} vs {base:.3f} s / 1k)",
                    "reported",
                    True,
                )
            )
    z = [median[f"Z{s}"] / median[f"H1{s}0"] for s in PATHS]
    cheaper = all(r < 0.97 for r in z)
    decision = (
        "zttp is cheaper, but enforces none of the request limits: httptools stays"
        if cheaper
        else "zttp is not cheaper: httptools stays the HTTP/1.1 protocol"
    )
    checks.append(
        (
            "ZA, ZC: HTTP/1.1 on zttp vs httptools, CPU per request (the default's decision)",
            f"A {z[0]:.2f}x, C {z[1]:.2f}x: {decision}",
            "reported",
            True,
        )
    )
    return checks


# --- 100 streams on one connection --------------------------------------------------
def _streams(bench: Bench, load_cpu: str) -> list[Check]:
    from bench.__main__ import Row

    gateway = bench.gateway(env={"HTTP2": "on"})
    try:
        url = gateway.url + PATHS["A"]
        result = run_h2load(url, clients=1, streams=100, requests=50_000, cpus=load_cpu)
    finally:
        gateway.stop()
    bench.add(Row("H2M", "A, 1 connection, 100 concurrent streams", "gateway", 1, _as_wrk(result)))
    return [
        (
            "H2M: one connection with 100 concurrent streams",
            f"{result.succeeded:,} of {result.requests:,} answered, {result.rps:,.0f} req/s",
            "0 errors",
            result.errors == 0 and result.requests == 50_000,
        )
    ]


# --- attacks beside a paced client --------------------------------------------------
def _attacks(bench: Bench, load_cpu: str) -> list[Check]:
    """Each attack on a gateway of its own (an attacker cut off is refused for
    a while: the next attack would only meet that), beside the same paced
    client measured without an attack first."""
    from bench.__main__ import SECONDS, pinned

    script = bench.workdir / "paced-h2x.lua"
    script.write_text(f"function delay()\n  return {PAUSE_MS}\nend\n")
    checks: list[Check] = []
    for attack in ATTACKS:
        gateway = bench.gateway(env={"HTTP2": "on", "CLIENT_SEND_TIMEOUT": "2s"})
        try:
            url = gateway.url + PATHS["A"]

            def paced(url: str = url) -> WrkResult:
                return run_wrk(
                    url, connections=PACED, seconds=SECONDS, cpus=load_cpu, script=str(script)
                )

            run_wrk(url, connections=PACED, seconds=2, cpus=load_cpu, script=str(script))
            quiet = paced()
            command = pinned(
                load_cpu,
                [sys.executable, "-m", "bench.h2attack", str(gateway.port), attack, str(SECONDS)],
            )
            attacker = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=bench.tree)
            under = paced()
            out, _ = attacker.communicate(timeout=SECONDS + 60)
        finally:
            gateway.stop()
        outcome = json.loads(out.decode().strip().splitlines()[-1])
        ratio = under.p99_ms / quiet.p99_ms
        cut = outcome["goaway"] + outcome["closed"]
        sys.stderr.write(
            f"  H2X   {attack}: p99 {under.p99_ms:.2f} ms vs {quiet.p99_ms:.2f} quiet,"
            f" attacker {outcome}\n"
        )
        checks.append(
            (
                f"H2X-{attack}: a paced client's p99 under attack vs none; the attacker cut off",
                f"{ratio:.2f}x ({under.p99_ms:.2f} vs {quiet.p99_ms:.2f} ms, {under.errors}"
                f" errors); {cut} of {outcome['connections']} attacking connections cut off",
                "p99 <= 2x, every connection cut off",
                ratio <= 2.0 and under.errors == 0 and cut >= outcome["connections"] > 0,
            )
        )
    return checks


# --- gRPC relay -----------------------------------------------------------------------
def _grpc(
    bench: Bench,
    start: Callable[..., Process],
    free_port: Callable[[], int],
    load_cpu: str,
    rounds: int,
) -> list[Check]:
    from bench.__main__ import SECONDS, WARMUP, Row, pinned

    port = free_port()
    stub_command = [sys.executable, "-m", "tests.integration.grpcstub", "--port", str(port)]
    stub = _grpc_stub(pinned(load_cpu, stub_command), port)
    data = bench.workdir / "grpc-frame.bin"
    data.write_bytes(GRPC_FRAME)
    routes = bench.workdir / "routes-grpc.yaml"
    routes.write_text(
        f"""version: 1
upstreams:
  echo: {{url: 'http://127.0.0.1:{port}', timeout: 30s, max_connections: 10000}}
routes:
  - name: echo
    grpc: {{upstream: echo, service: test.v1.Echo}}
"""
    )
    ratios: list[float] = []
    last: dict[str, H2Result] = {}
    gateway = bench.gateway(routes=routes, env={"HTTP2": "on"})
    try:
        for round_ in range(max(rounds, 3)):
            order = ("direct", "relayed") if round_ % 2 == 0 else ("relayed", "direct")
            for which in order:
                base = f"http://127.0.0.1:{port}" if which == "direct" else gateway.url
                url = base + "/test.v1.Echo/Slow"

                def load(seconds: float, url: str = url) -> H2Result:
                    return run_h2load(
                        url,
                        clients=16,
                        streams=8,
                        seconds=seconds,
                        cpus=load_cpu,
                        headers=GRPC_HEADERS,
                        data=str(data),
                    )

                load(WARMUP)
                last[which] = load(SECONDS)
            ratios.append(last["relayed"].rps / last["direct"].rps)
            sys.stderr.write(
                f"  GU    round {round_ + 1}: {last['relayed'].rps:,.0f} req/s relayed,"
                f" {last['direct'].rps:,.0f} direct ({ratios[-1]:.2f})\n"
            )
    finally:
        gateway.stop()
        stub.terminate()
        stub.wait(10)
    for which, label in (
        ("direct", "straight to the upstream"),
        ("relayed", "through the gateway"),
    ):
        row = Row("GU", f"gRPC unary, {label} (h2load 16x8)", which, 16, _as_wrk(last[which]))
        bench.add(row, report=False)
    ratio = statistics.median(ratios)
    errors = last["relayed"].errors + last["direct"].errors
    return [
        (
            "GU: gRPC unary relay, req/s through the gateway vs straight to the upstream",
            f"{ratio:.2f} (median of {len(ratios)}, {min(ratios):.2f}-{max(ratios):.2f}; {errors} errors)",
            ">= 0.40",
            ratio >= 0.40 and errors == 0,
        )
    ]


def _grpc_stub(command: list[str], port: int) -> subprocess.Popen[bytes]:
    """A grpcio upstream, ready once it accepts connections."""
    import socket
    import time

    from bench.__main__ import ROOT

    popen = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return popen
        except OSError:
            time.sleep(0.1)
    popen.kill()
    raise SystemExit("the gRPC stub did not start")
