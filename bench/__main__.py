"""`make bench` (python -m bench): the gateway under wrk, against stub upstreams.

Scenarios (each beside a direct-to-upstream baseline):
  A  pass-through proxy to one upstream                          64 connections
  B  three backends, each answering after 50 ms                 256 connections
  C  three backends answering at once                            64 connections
  D  C with an API key and a rate limit checked on every request 64 connections
B and C also run on the other upstream transports (httpx-aiohttp, and httpx's
own pool) to show why the default is what it is.

The gateway is pinned to CPU 0; wrk and the stubs share CPU 1 (when taskset
exists). Each scenario gets a fresh gateway. Gateway CPU per 1,000 requests
comes from /proc/PID/stat; RSS is the gateway's resident memory after the run.
BENCH_SECONDS sets each measurement's length (default 8), after a 2 s warm-up.
"""

from __future__ import annotations

import os
import shutil
import signal
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
API_KEY = "bench-key-0123456789"

ROUTES = """
version: 1
settings: {{timeout: 30s}}
upstreams:
{upstreams}
auth:
  bench: {{type: api_key, keys: [{{id: bench, key: {api_key}}}]}}
routes:
  - name: proxy
    path: /proxy/{{rest:path}}
    proxy: {{upstream: u0, path: "/{{rest}}"}}
  - name: fast3
    path: /fast3
    backends: &fast3
      - {{upstream: u0, path: /users/1, key: a}}
      - {{upstream: u1, path: /users/2, key: b}}
      - {{upstream: u2, path: /users/3, key: c}}
  - name: fast3-guarded
    path: /fast3-guarded
    auth: bench
    rate_limit: {{limit: 1000000, window: 1s}}
    backends: *fast3
  - name: slow3
    path: /slow3
    backends:
      - {{upstream: u0, path: /delay/50/users/1, key: a}}
      - {{upstream: u1, path: /delay/50/users/2, key: b}}
      - {{upstream: u2, path: /delay/50/users/3, key: c}}
"""


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    path: str
    connections: int
    transport: str = "aiohttp"
    headers: dict[str, str] = field(default_factory=dict)


SCENARIOS = [
    Scenario("A", "A: proxy, 1 upstream", "/proxy/users/1", 64),
    Scenario("B", "B: 3 backends x 50 ms", "/slow3", 256),
    Scenario("C", "C: 3 backends, instant", "/fast3", 64),
    Scenario(
        "D", "D: C + API key + rate limit", "/fast3-guarded", 64, headers={"X-API-Key": API_KEY}
    ),
    *(
        Scenario(key, title, path, conns, transport=transport)
        for transport in ("httpx-aiohttp", "httpx")
        for key, title, path, conns in (
            ("B", "B: 3 backends x 50 ms", "/slow3", 256),
            ("C", "C: 3 backends, instant", "/fast3", 64),
        )
    ),
]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cpus: str, command: list[str]) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", cpus, *command]
    return command


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
            error = popen.stderr.read().decode() if popen.stderr else ""
            raise SystemExit(f"{command[:6]} failed:\n{error}")
        try:
            httpx.get(process.url + ready, timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{command[:6]} did not start")


def gateway_command(port: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
        "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
        "--no-server-header", "--backlog", "16384", "--log-level", "warning",
    ]  # fmt: skip


@dataclass
class Row:
    key: str
    scenario: str
    target: str
    connections: int
    result: WrkResult
    cpu_per_1k: float | None = None
    rss_mb: float | None = None


def measure(
    url: str, scenario: Scenario | None, connections: int, gateway: Process | None
) -> tuple[WrkResult, float | None, float | None]:
    headers = scenario.headers if scenario else None
    run_wrk(url, connections=connections, seconds=WARMUP, cpus=LOAD_CPU, headers=headers)
    before = gateway.cpu_seconds() if gateway else 0.0
    result = run_wrk(url, connections=connections, seconds=SECONDS, cpus=LOAD_CPU, headers=headers)
    if gateway is None:
        return result, None, None
    used = gateway.cpu_seconds() - before
    return result, used / max(result.requests, 1) * 1000, gateway.rss_mb()


def run_scenario(scenario: Scenario, routes: Path) -> Row:
    """A fresh gateway per scenario: wrk's disconnects at the end of a run cancel
    in-flight upstream calls, which wedges httpx's own pool for good
    (httpcore#1093) and would poison the next measurement."""
    port = free_port()
    env = {
        "ROUTES_FILE": str(routes),
        "UPSTREAM_TRANSPORT": scenario.transport,
        "RELOAD": "false",
        "LOG_LEVEL": "WARNING",
    }
    gateway = start(pinned(GATEWAY_CPU, gateway_command(port)), port, "/readyz", env)
    try:
        result, cpu, rss = measure(
            gateway.url + scenario.path, scenario, scenario.connections, gateway
        )
    finally:
        gateway.stop()
    return Row(
        scenario.key,
        scenario.title,
        f"gateway ({scenario.transport})",
        scenario.connections,
        result,
        cpu,
        rss,
    )


def main() -> None:
    require_wrk()
    ports = [free_port() for _ in range(3)]
    stub_args = [
        sys.executable,
        "-m",
        "bench.upstream",
        *(a for p in ports for a in ("--port", str(p))),
    ]
    stub = start(pinned(LOAD_CPU, stub_args), ports[0], "/")
    rows: list[Row] = []
    workdir = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    routes = workdir / "routes.yaml"
    upstreams = "\n".join(
        f"  u{i}: {{url: 'http://127.0.0.1:{p}', timeout: 30s, max_connections: 512}}"
        for i, p in enumerate(ports)
    )
    routes.write_text(ROUTES.format(upstreams=upstreams, api_key=API_KEY))
    try:
        for path, conns, name in (
            ("/users/1", 64, "baseline (direct)"),
            ("/delay/50/users/1", 256, "baseline 50 ms (direct)"),
        ):
            result, _, _ = measure(stub.url + path, None, conns, None)
            rows.append(Row("base", name, "upstream stub", conns, result))
            report(rows[-1])
        for scenario in SCENARIOS:
            rows.append(run_scenario(scenario, routes))
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
    def rps(key: str, transport: str = "aiohttp") -> float:
        row = next((r for r in rows if r.key == key and r.target == f"gateway ({transport})"), None)
        return row.result.rps if row else 0.0

    checks = []
    if rps("B", "httpx"):
        ratio = rps("B") / rps("B", "httpx")
        checks.append(
            ("B, default transport vs httpx's own pool", f"{ratio:.1f}x", "at least 3x", ratio >= 3)
        )
    if rps("C"):
        cost = 1 - rps("D") / rps("C")
        checks.append(
            (
                "D (auth + rate limit) vs C, throughput cost",
                f"{cost:.0%}",
                "at most 15%",
                cost <= 0.15,
            )
        )
    return "\n".join(
        f"- {name}: {value} (target {target}): {'met' if ok else 'MISSED'}"
        for name, value, target, ok in checks
    )


if __name__ == "__main__":
    main()
