"""`make bench` (python -m bench): the gateway under wrk, against stub upstreams.

Scenarios (each beside a direct-to-upstream baseline):
  A  pass-through proxy to one upstream                       64 connections
  B  three backends, each answering after 50 ms               256 connections
  C  three backends answering at once                         64 connections
B and C run once per upstream transport: aiohttp (ours, the default),
httpx-aiohttp, and httpx's own pool.

The gateway is pinned to CPU 0; wrk and the stubs share CPU 1 (when taskset
exists). Gateway CPU per 1,000 requests comes from /proc/PID/stat; RSS is the
gateway's resident memory after the scenario. BENCH_SECONDS sets the length of
each measurement (default 8), after a 2 s warm-up.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .wrk import WrkResult, require_wrk, run_wrk

ROOT = Path(__file__).resolve().parent.parent
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
WARMUP = 2.0
GATEWAY_CPU, LOAD_CPU = "0", "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cpus: str, command: list[str]) -> list[str]:
    return (
        ["taskset", "-c", cpus, *command]
        if shutil.which("taskset") and os.cpu_count() and os.cpu_count() > 1
        else command
    )


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def start(command: list[str], port: int, ready: str, env: dict[str, str] | None = None) -> Process:
    popen = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    process = Process(popen, port)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise SystemExit(
                f"{command[:6]} failed:\n{popen.stderr.read().decode() if popen.stderr else ''}"
            )
        try:
            httpx.get(process.url + ready, timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{command[:6]} did not start")


ROUTES = """
version: 1
settings: {{timeout: 30s}}
upstreams:
{upstreams}
routes:
  - name: proxy
    path: /proxy/{{rest:path}}
    proxy: {{upstream: u0, path: "/{{rest}}"}}
  - name: fast3
    path: /fast3
    backends:
      - {{upstream: u0, path: /users/1, key: a}}
      - {{upstream: u1, path: /users/2, key: b}}
      - {{upstream: u2, path: /users/3, key: c}}
  - name: slow3
    path: /slow3
    backends:
      - {{upstream: u0, path: /delay/50/users/1, key: a}}
      - {{upstream: u1, path: /delay/50/users/2, key: b}}
      - {{upstream: u2, path: /delay/50/users/3, key: c}}
"""


@dataclass
class Row:
    scenario: str
    target: str
    connections: int
    result: WrkResult
    cpu_per_1k: float | None = None
    rss_mb: float | None = None
    notes: list[str] = field(default_factory=list)


def measure(
    url: str, connections: int, gateway: Process | None
) -> tuple[WrkResult, float | None, float | None]:
    run_wrk(url, connections=connections, seconds=WARMUP, cpus=LOAD_CPU)
    before = gateway.cpu_seconds() if gateway else 0.0
    result = run_wrk(url, connections=connections, seconds=SECONDS, cpus=LOAD_CPU)
    if gateway is None:
        return result, None, None
    used = gateway.cpu_seconds() - before
    return result, used / max(result.requests, 1) * 1000, gateway.rss_mb()


def gateway_command(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "config.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--no-server-header",
        "--backlog",
        "16384",
        "--log-level",
        "warning",
    ]


def main() -> None:
    require_wrk()
    ports = [free_port() for _ in range(3)]
    stub = start(
        pinned(
            LOAD_CPU,
            [
                sys.executable,
                "-m",
                "bench.upstream",
                *(a for p in ports for a in ("--port", str(p))),
            ],
        ),
        ports[0],
        "/",
    )
    rows: list[Row] = []
    workdir = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    routes = workdir / "routes.yaml"
    routes.write_text(
        ROUTES.format(
            upstreams="\n".join(
                f"  u{i}: {{url: 'http://127.0.0.1:{p}', timeout: 30s, max_connections: 512}}"
                for i, p in enumerate(ports)
            )
        )
    )
    try:
        for path, conns, name in (
            ("/users/1", 64, "baseline (direct)"),
            ("/delay/50/users/1", 256, "baseline 50 ms (direct)"),
        ):
            result, _, _ = measure(stub.url + path, conns, None)
            rows.append(Row(name, "upstream stub", conns, result))
            report(rows[-1])
        for transport in ("aiohttp", "httpx-aiohttp", "httpx"):
            scenarios = [
                ("B: 3 backends x 50 ms", "/slow3", 256),
                ("C: 3 backends, instant", "/fast3", 64),
            ]
            if transport == "aiohttp":
                scenarios.insert(0, ("A: proxy, 1 upstream", "/proxy/users/1", 64))
            for name, path, conns in scenarios:
                # A fresh gateway per scenario: wrk's disconnects at the end of one
                # run cancel in-flight upstream calls, which wedges httpx's own pool
                # for good (httpcore#1093) and would poison the next measurement.
                port = free_port()
                env = {
                    "ROUTES_FILE": str(routes),
                    "UPSTREAM_TRANSPORT": transport,
                    "RELOAD": "false",
                    "LOG_LEVEL": "WARNING",
                }
                gateway = start(pinned(GATEWAY_CPU, gateway_command(port)), port, "/readyz", env)
                try:
                    result, cpu, rss = measure(gateway.url + path, conns, gateway)
                finally:
                    gateway.stop()
                rows.append(Row(name, f"gateway ({transport})", conns, result, cpu, rss))
                report(rows[-1])
    finally:
        stub.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(table(rows))
    print()
    print(verdicts(rows))


def report(row: Row) -> None:
    sys.stderr.write(f"  {row.scenario} / {row.target}: {row.result.rps:,.0f} req/s\n")


def table(rows: list[Row]) -> str:
    lines = [
        "| scenario | target | conns | req/s | p50 ms | p99 ms | errors | gateway CPU s / 1k req | gateway RSS MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cpu = f"{r.cpu_per_1k:.3f}" if r.cpu_per_1k is not None else "-"
        rss = f"{r.rss_mb:.0f}" if r.rss_mb is not None else "-"
        lines.append(
            f"| {r.scenario} | {r.target} | {r.connections} | {r.result.rps:,.0f} | {r.result.p50_ms:.1f} | "
            f"{r.result.p99_ms:.1f} | {r.result.errors} | {cpu} | {rss} |"
        )
    return "\n".join(lines)


def verdicts(rows: list[Row]) -> str:
    def find(scenario: str, target: str) -> Row | None:
        return next(
            (r for r in rows if r.scenario.startswith(scenario) and r.target == target), None
        )

    out = []
    ours, theirs = find("B:", "gateway (aiohttp)"), find("B:", "gateway (httpx)")
    if ours and theirs and theirs.result.rps:
        ratio = ours.result.rps / theirs.result.rps
        out.append(
            f"- B with the default transport vs httpx's own pool: {ratio:.1f}x (target >= 3x): {'met' if ratio >= 3 else 'MISSED'}"
        )
    return "\n".join(out)


if __name__ == "__main__":
    main()
