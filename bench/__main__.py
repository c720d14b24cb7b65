"""`make bench` (python -m bench): the gateway under wrk against stub upstreams,
beside the reference peers, in one table with every target marked met or missed.

  A    pass-through proxy to one upstream, 64 connections   (gateway | nginx)
  B    3 backends each answering after 50 ms, 256 conns    (gateway on each upstream
       transport | Django sync view under gunicorn, 4 workers)
  B64  B with 64 connections                               (gateway: p50 vs the 50 ms delay)
  C    3 backends answering at once, 64 connections        (gateway on each transport |
       the floor: a minimal Django async view calling aiohttp directly)
  C1k  C with 1,000 routes in the table                    (routing cost stays flat)
  CH   C with a no-op hook at each stage (request, backend, response)
  C0   C with no auth, no rate limit, no metrics, no access log
  D    C with API key auth, a rate limit, metrics and the access log
  E    C10k: 9,000 requests opened at once, 1 backend answering after 5 s
  H1-H4  limits against hostile clients and upstreams (bench/limits.py)
  I1 I2  no client starves another: 100 event streams from one client beside
       another's requests; 12 clients that never read a 17 MB answer (bench/isolation.py)
  W R S P  long-lived connections: WebSockets held and relayed, event streams,
       progressive aggregation (bench/longlived.py)
  T0 T T100 T10 TD  C without trace context, with it (the default), exporting every
       request or 10% to a local OTLP receiver, and with the dashboard open
       (bench/observe.py)
  JV PI PV PZ Q  route policies: the JSON Schema validators compared, an ip list of
       10,000 CIDRs, validation of a 1 KiB body, compression of a 10 KiB answer,
       quota decisions with 1,000,000 consumers (bench/policies.py)
  UT10 UM UK  upstream traffic: 10 targets vs 1, mirroring 100%, a target killed
       under load (bench/traffic.py)
  H1* H2* Z* H2M H2X GU  HTTP/2 and gRPC: CPU per request over HTTP/2 beside
       HTTP/1.1, zttp vs httptools, 100 streams on a connection, attacks beside a
       paced client, the gRPC relay vs calling the upstream directly (bench/http2.py)

The gateway (and each peer) runs on CPU 0; wrk, the stubs and the C10k client on
CPU 1 (when taskset exists). Every scenario gets a fresh process. Gateway CPU
per 1,000 requests comes from /proc/PID/stat. The scenarios that the ratio
targets compare run interleaved, BENCH_ROUNDS times (default 3), and report
their median run: on a shared machine the CPU's speed drifts by tens of
percent within minutes. BENCH_SECONDS sets each measurement (default 6, after
a 2 s warm-up); BENCH_C10K sets E's size. BENCH_ONLY=throughput|limits|isolation|longlived|observe|policies|traffic|http2
runs one group of scenarios; BENCH_SCENARIOS=C,CH only those of the throughput
group. BENCH_AGAINST=<git ref> pairs every compared gateway scenario with the
same on that ref's gateway, and BENCH_TREE=<dir> benches another checkout
(bench/paired.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import http2, isolation, limits, longlived, observe, paired, policies, traffic
from bench.c10k import raise_fd_limit, run_c10k
from bench.peers.nginx import nginx_command
from bench.wrk import WrkResult, require_wrk, run_wrk

ROOT = Path(__file__).resolve().parent.parent
SECONDS = float(os.environ.get("BENCH_SECONDS", "6"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
C10K = int(os.environ.get("BENCH_C10K", "9000"))
WARMUP = 2.0
GATEWAY_CPU, LOAD_CPU = "0", "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
API_KEY = "bench-key-0123456789"
BARE = {"ACCESS_LOG": "off", "METRICS": "off"}

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
  - name: fast3-hooked
    path: /fast3-hooked
    hooks:
      request: [bench.noophooks:on_request]
      backend: [bench.noophooks:on_backend]
      response: [bench.noophooks:on_response]
    backends: *fast3
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
  - name: slow5
    path: /slow5
    timeout: 60s
    backends: [{{upstream: u0, path: /delay/5000/users/1, key: a}}]
{more_routes}
"""


def upstreams_yaml(ports: list[int]) -> str:
    """The stub upstreams u0, u1, ... as the `upstreams:` lines of a routes file."""
    return "\n".join(
        f"  u{i}: {{url: 'http://127.0.0.1:{p}', timeout: 30s, max_connections: 10000}}"
        for i, p in enumerate(ports)
    )


def free_port() -> int:
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

    def pids(self) -> list[int]:
        """The process and its children (gunicorn's workers)."""
        children = Path(f"/proc/{self.popen.pid}/task/{self.popen.pid}/children")
        extra = [int(p) for p in children.read_text().split()] if children.exists() else []
        return [self.popen.pid, *extra]

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
        return total

    def status_kb(self, key: str) -> int:
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(
                signal.SIGINT if "nginx" not in str(self.popen.args) else signal.SIGQUIT
            )
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def start(
    command: list[str],
    port: int,
    ready: str,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
) -> Process:
    popen = subprocess.Popen(
        command,
        cwd=cwd,
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
            if httpx.get(process.url + ready, timeout=2).status_code < 500:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{command[:6]} did not start")


def uvicorn_command(app: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--no-server-header",
        "--backlog", "16384", "--log-level", "warning", "--timeout-keep-alive", "75",
    ]  # fmt: skip


@dataclass
class Scenario:
    key: str
    scenario: str
    target: str
    starter: Callable[[], Process | None]
    path: str
    connections: int
    headers: dict[str, str] | None = None
    warmup: bool = True


@dataclass
class Row:
    key: str
    scenario: str
    target: str
    connections: int
    result: WrkResult | None
    cpu_per_1k: float | None = None
    rss_mb: float | None = None
    note: str = ""
    runs: int = 1
    rounds: list[Row] = field(default_factory=list)  # each round's run, for paired ratios


@dataclass
class Bench:
    routes: Path
    more_routes: Path
    stub_ports: list[int]
    workdir: Path
    rows: list[Row] = field(default_factory=list)
    checks: list[limits.Check] = field(default_factory=list)
    tree: Path = ROOT  # the checkout whose gateway runs (bench/paired.py)

    def add(self, row: Row, report: bool = True) -> Row:
        self.rows.append(row)
        if report:
            rps = f"{row.result.rps:,.0f} req/s" if row.result else row.note
            sys.stderr.write(f"  {row.key:4} {row.scenario} / {row.target}: {rps}\n")
        return row

    def measure(
        self,
        process: Process | None,
        url: str,
        conns: int,
        headers: dict[str, str] | None = None,
        warmup: bool = True,
    ) -> tuple[WrkResult, float | None, float | None]:
        if (
            warmup
        ):  # not for a sync server: the warm-up's dropped connections would queue in its backlog
            run_wrk(url, connections=conns, seconds=WARMUP, cpus=LOAD_CPU, headers=headers)
        before = process.cpu_seconds() if process else 0.0
        result = run_wrk(url, connections=conns, seconds=SECONDS, cpus=LOAD_CPU, headers=headers)
        if process is None:
            return result, None, None
        used = process.cpu_seconds() - before
        return result, used / max(result.requests, 1) * 1000, process.status_kb("VmRSS") / 1024

    def gateway(
        self,
        env: dict[str, str] | None = None,
        routes: Path | None = None,
        transport: str = "h1",
        app: str = "config.asgi:application",
    ) -> Process:
        """A fresh gateway; `transport` other than h1 swaps in a comparison
        transport (bench/transports), which the product does not ship; `app`
        another entry (bench/notrace.py)."""
        port = free_port()
        if transport != "h1":
            app = "bench.transports.gateway:application"
            env = {**(env or {}), "BENCH_TRANSPORT": transport}
        environment = {
            "ROUTES_FILE": str(routes or self.routes),
            "RELOAD": "false",
            "LOG_LEVEL": "WARNING",
            "ADMIN_ADDR": "off",  # one gateway after another: no port to share
            **(env or {}),
        }
        return start(
            pinned(GATEWAY_CPU, uvicorn_command(app, port)),
            port,
            "/readyz",
            environment,
            cwd=self.tree,
        )

    def peer_env(self) -> dict[str, str]:
        return {"PEER_UPSTREAMS": ",".join(f"http://127.0.0.1:{p}" for p in self.stub_ports)}

    def run_scenario(self, s: Scenario) -> Row:
        """One fresh process, one measurement (not yet added to the table)."""
        process = s.starter()
        try:
            assert process is not None
            result, cpu, rss = self.measure(
                process, process.url + s.path, s.connections, s.headers, s.warmup
            )
        finally:
            if process is not None:
                process.stop()
        row = Row(s.key, s.scenario, s.target, s.connections, result, cpu, rss)
        sys.stderr.write(f"  {row.key:4} {row.scenario} / {row.target}: {result.rps:,.0f} req/s\n")
        return row

    def run(
        self,
        key: str,
        scenario: str,
        target: str,
        starter: Callable[[], Process | None],
        path: str,
        conns: int,
        headers: dict[str, str] | None = None,
        warmup: bool = True,
    ) -> Row:
        process = starter()
        try:
            assert process is not None
            result, cpu, rss = self.measure(process, process.url + path, conns, headers, warmup)
        finally:
            if process is not None:
                process.stop()
        return self.add(Row(key, scenario, target, conns, result, cpu, rss))


def main() -> None:
    require_wrk()
    raise_fd_limit()
    workdir = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    ports = [free_port() for _ in range(3)]
    stub_command = [
        sys.executable,
        "-m",
        "bench.upstream",
        *(a for p in ports for a in ("--port", str(p))),
    ]
    stub = start(pinned(LOAD_CPU, stub_command), ports[0], "/")
    upstreams = upstreams_yaml(ports)
    routes = workdir / "routes.yaml"
    routes.write_text(ROUTES.format(upstreams=upstreams, api_key=API_KEY, more_routes=""))
    filler = "".join(
        f"  - {{name: filler-{i}, path: '/svc{i}/items/{{id}}/detail', backends: [{{upstream: u0, path: '/users/{{id}}'}}]}}\n"
        for i in range(1000)
    )
    more = workdir / "routes-1000.yaml"
    more.write_text(ROUTES.format(upstreams=upstreams, api_key=API_KEY, more_routes=filler))
    bench = Bench(routes, more, ports, workdir)
    if tree := os.environ.get("BENCH_TREE"):
        bench.tree = Path(tree).resolve()
    guarded = {"X-API-Key": API_KEY}
    nginx = nginx_command(workdir, nginx_port := free_port(), ports[0])

    def nginx_peer() -> Process | None:
        return start(pinned(GATEWAY_CPU, nginx), nginx_port, "/proxy/users/1") if nginx else None

    # The scenarios that the ratio targets compare run interleaved, ROUNDS times;
    # each reports its median run, so that the machine's drift cancels out.
    compared: list[Scenario] = [
        Scenario("A", "proxy, 1 upstream", DEFAULT, bench.gateway, "/proxy/users/1", 64),
        Scenario("B64", "3 backends x 50 ms", DEFAULT, bench.gateway, "/slow3", 64),
        Scenario("C", "3 backends, instant", DEFAULT, bench.gateway, "/fast3", 64),
        Scenario(
            "C",
            "3 backends, instant",
            "floor: Django view + aiohttp",
            lambda: floor(bench),
            "/fast3",
            64,
        ),
        Scenario(
            "C1k", "C, 1,000 routes", DEFAULT, lambda: bench.gateway(routes=more), "/fast3", 64
        ),
        Scenario("CH", "C + a no-op hook per stage", DEFAULT, bench.gateway, "/fast3-hooked", 64),
        Scenario(
            "C0",
            "C, bare: no auth/limit/metrics/log",
            DEFAULT,
            lambda: bench.gateway(BARE),
            "/fast3",
            64,
        ),
        Scenario(
            "D",
            "C + auth + rate limit + metrics + log",
            DEFAULT,
            bench.gateway,
            "/fast3-guarded",
            64,
            guarded,
        ),
    ]
    if nginx:
        compared.insert(
            1, Scenario("A", "proxy, 1 upstream", "nginx", nginx_peer, "/proxy/users/1", 64)
        )
    else:
        bench.add(
            Row(
                "A",
                "proxy, 1 upstream",
                "nginx",
                64,
                None,
                note="nginx not installed (apt-get install nginx-light)",
            )
        )
    once: list[Scenario] = [
        *(
            Scenario(
                "B",
                "3 backends x 50 ms",
                gateway_label(t),
                lambda t=t: bench.gateway(transport=t),
                "/slow3",
                256,
            )
            for t in TRANSPORTS
        ),
        Scenario(
            "B",
            "3 backends x 50 ms",
            "Django sync view, gunicorn -w 4",
            lambda: gunicorn(bench),
            "/slow3",
            256,
            warmup=False,
        ),
        *(
            Scenario(
                "C",
                "3 backends, instant",
                gateway_label(t),
                lambda t=t: bench.gateway(transport=t),
                "/fast3",
                64,
            )
            for t in TRANSPORTS[1:]
        ),
    ]
    if wanted := os.environ.get("BENCH_SCENARIOS"):
        keys = {k.strip() for k in wanted.split(",")}
        compared = [s for s in compared if s.key in keys]
        once = [s for s in once if s.key in keys]
    against = os.environ.get("BENCH_AGAINST", "")
    against_tree = paired.checkout(ROOT, against, workdir) if against else None
    if against_tree is not None:
        compared = paired.twins(compared, bench, against_tree, against)
    only = os.environ.get("BENCH_ONLY", "")
    try:
        if only in ("", "limits"):
            sys.stderr.write("limits (H1-H4)\n")
            bench.checks += limits.limiter_keys()
            bench.checks += limits.url_flood(bench)
            bench.checks += limits.big_aggregation(bench)
            bench.checks += limits.framing(bench, start, free_port)
        if only in ("", "isolation"):
            sys.stderr.write("isolation (I1, I2)\n")
            bench.checks += isolation.run_all(bench, start, free_port, LOAD_CPU)
        if only in ("", "longlived"):
            sys.stderr.write("long-lived connections (W, R, S, P)\n")
            bench.checks += longlived.run_all(bench, start, free_port, LOAD_CPU)
        if only in ("", "observe"):
            sys.stderr.write("observability (T0 T T100 T10 TD)\n")
            bench.checks += observe.run_all(bench, start, free_port, LOAD_CPU, ROUNDS)
        if only in ("", "policies"):
            sys.stderr.write("route policies (JV PI PV PZ Q)\n")
            bench.checks += policies.run_all(bench, start, free_port, LOAD_CPU, ROUNDS)
        if only in ("", "traffic"):
            sys.stderr.write("upstream traffic (UT10 UM UK)\n")
            bench.checks += traffic.run_all(bench, start, free_port, LOAD_CPU, ROUNDS)
        if only in ("", "http2"):
            sys.stderr.write("HTTP/2 and gRPC (H1 H2 Z H2M H2X GU)\n")
            bench.checks += http2.run_all(bench, start, free_port, LOAD_CPU, ROUNDS)
        if only in ("limits", "isolation", "longlived", "observe", "policies", "traffic", "http2"):
            return
        for path, conns, name in (
            ("/users/1", 64, "direct to upstream"),
            ("/delay/50/users/1", 256, "direct to upstream, 50 ms"),
        ):
            result, _, _ = bench.measure(None, stub.url + path, conns)
            bench.add(Row("base", name, "stub", conns, result))
        runs: dict[int, list[Row]] = {i: [] for i in range(len(compared))}
        for round_ in range(1, ROUNDS + 1):
            sys.stderr.write(f"round {round_} of {ROUNDS}\n")
            for i, scenario in enumerate(compared):
                runs[i].append(bench.run_scenario(scenario))
        for i in range(len(compared)):
            bench.add(median_row(runs[i]), report=False)
        for scenario in once:
            bench.add(bench.run_scenario(scenario), report=False)
        if against_tree is not None:
            bench.checks += paired.verdicts(bench.rows, against)
        if not os.environ.get("BENCH_SCENARIOS"):
            c10k(bench)
    finally:
        stub.stop()
        if against_tree is not None:
            paired.remove(ROOT, against_tree)
        shutil.rmtree(workdir, ignore_errors=True)
        print()
        print(table(bench.rows))
        print()
        print(verdicts(bench.rows, bench.checks, throughput=only in ("", "throughput")))


TRANSPORTS = ("h1", "aiohttp", "httpx-aiohttp", "httpx")  # the default first
DEFAULT = "gateway"


def gateway_label(transport: str) -> str:
    return DEFAULT if transport == TRANSPORTS[0] else f"gateway ({transport} transport)"


def gunicorn(bench: Bench) -> Process:
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "-w",
        "4",
        "-b",
        f"127.0.0.1:{port}",
        "--backlog",
        "4096",
        "--log-level",
        "warning",
        "bench.peers.syncview:application",
    ]
    return start(pinned(GATEWAY_CPU, command), port, "/fast3", bench.peer_env())


def floor(bench: Bench) -> Process:
    port = free_port()
    return start(
        pinned(GATEWAY_CPU, uvicorn_command("bench.peers.floor:application", port)),
        port,
        "/fast3",
        bench.peer_env(),
    )


def c10k(bench: Bench) -> None:
    gateway = bench.gateway()
    try:
        with longlived.peak_rss(gateway) as peak:
            result = run_c10k("127.0.0.1", gateway.port, "/slow5", C10K, deadline=30.0)
    finally:
        gateway.stop()
    failures = {k: v for k, v in result.statuses.items() if k != "200"}
    note = f"{result.ok:,}/{result.opened:,} answered 200 in {result.seconds:.1f} s; peak RSS {peak[0] / 1024:.0f} MB"
    if failures:
        note += f"; others: {failures}"
    row = Row(
        "E",
        f"C10k: {C10K:,} at once, upstream 5 s",
        "gateway",
        C10K,
        None,
        None,
        peak[0] / 1024,
        note,
    )
    row.c10k = result  # type: ignore[attr-defined]
    bench.add(row)


def median_row(rows: list[Row]) -> Row:
    """The run with the median throughput, labelled with the number of runs."""
    ordered = sorted(rows, key=lambda r: r.result.rps if r.result else 0.0)
    row = ordered[len(ordered) // 2]
    row.runs = len(rows)
    row.rounds = list(rows)
    return row


def paired_cpu_ratio(mine: Row, theirs: Row) -> float | None:
    """CPU per request, `mine` over `theirs`: the median of the ratios of
    runs made one after the other in the same round (the drift of a shared
    machine falls on both), or of the medians when they were not paired."""
    pairs = [
        a.cpu_per_1k / b.cpu_per_1k
        for a, b in zip(mine.rounds, theirs.rounds, strict=False)
        if a.cpu_per_1k and b.cpu_per_1k
    ]
    if pairs and len(mine.rounds) == len(theirs.rounds):
        return statistics.median(pairs)
    if mine.cpu_per_1k and theirs.cpu_per_1k:
        return mine.cpu_per_1k / theirs.cpu_per_1k
    return None


def table(rows: list[Row]) -> str:
    lines = [
        "| | scenario | target | conns | req/s | p50 ms | p99 ms | errors | CPU s / 1k req | RSS MB |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cpu = f"{r.cpu_per_1k:.3f}" if r.cpu_per_1k is not None else "-"
        rss = f"{r.rss_mb:.0f}" if r.rss_mb is not None else "-"
        if r.result is None:
            lines.append(
                f"| {r.key} | {r.scenario} | {r.target} | {r.connections:,} | {r.note} | | | | {cpu} | {rss} |"
            )
            continue
        target = f"{r.target} (median of {r.runs})" if r.runs > 1 else r.target
        lines.append(
            f"| {r.key} | {r.scenario} | {target} | {r.connections} | {r.result.rps:,.0f} | {r.result.p50_ms:.1f} | "
            f"{r.result.p99_ms:.1f} | {r.result.errors} | {cpu} | {rss} |"
        )
    return "\n".join(lines)


def verdicts(rows: list[Row], extra: list[limits.Check], *, throughput: bool = True) -> str:
    def row(key: str, target: str) -> Row | None:
        return next((r for r in rows if r.key == key and r.target == target), None)

    def rps(key: str, target: str) -> float:
        found = row(key, target)
        return found.result.rps if found and found.result else 0.0

    checks: list[tuple[str, str, str, bool]] = []

    def ratio(
        name: str,
        mine: float,
        theirs: float,
        target: float,
        at_least: bool = True,
        peer: Row | bool | None = True,
    ) -> None:
        if peer is None or (isinstance(peer, Row) and peer.result is None):
            checks.append((name, "not measured (the peer is not installed)", f"{target}x", False))
        elif mine and not theirs:  # the peer completed nothing in the whole measurement
            checks.append(
                (
                    name,
                    "unbounded (the peer completed no request)",
                    f"{'>=' if at_least else '<='} {target}x",
                    at_least,
                )
            )
        elif mine and theirs:
            value = mine / theirs
            checks.append(
                (
                    name,
                    f"{value:.2f}x",
                    f"{'>=' if at_least else '<='} {target}x",
                    value >= target if at_least else value <= target,
                )
            )
        else:
            checks.append((name, "not measured", f"{target}x", False))

    if not throughput:  # BENCH_ONLY=limits, longlived or observe
        return "\n".join(
            f"- {name}: {value} (target {target}): {'met' if ok else 'MISSED'}"
            for name, value, target, ok in extra
        )
    ratio(
        "B: default transport vs httpx's own pool",
        rps("B", DEFAULT),
        rps("B", gateway_label("httpx")),
        3,
    )
    ratio(
        "B: gateway vs the gunicorn sync baseline",
        rps("B", DEFAULT),
        rps("B", "Django sync view, gunicorn -w 4"),
        25,
    )
    b64 = row("B64", "gateway")
    if b64 and b64.result:
        checks.append(
            (
                "B64: p50 within 10 ms of the 50 ms delay",
                f"{b64.result.p50_ms:.1f} ms",
                "<= 60 ms",
                b64.result.p50_ms <= 60,
            )
        )
    ratio(
        "A: proxy throughput vs nginx",
        rps("A", "gateway"),
        rps("A", "nginx"),
        0.10,
        peer=row("A", "nginx"),
    )

    def cpu_ratio(name: str, mine: Row | None, theirs: Row | None, target: float) -> None:
        """CPU per request, `mine` over `theirs` (paired by round), when both were measured."""
        if mine and theirs and (value := paired_cpu_ratio(mine, theirs)) is not None:
            ratio(name + " (median of paired rounds)", value, 1.0, target, at_least=False)

    c = row("C", DEFAULT)
    cpu_ratio(
        "C: gateway CPU per request vs the floor", c, row("C", "floor: Django view + aiohttp"), 0.6
    )
    cpu_ratio("C1k: CPU per request with 1,000 routes vs C", row("C1k", "gateway"), c, 1.10)
    cpu_ratio("CH: CPU per request with a no-op hook per stage vs C", row("CH", "gateway"), c, 1.05)
    cost = 1 - rps("D", "gateway") / rps("C0", "gateway") if rps("C0", "gateway") else 1.0
    checks.append(
        (
            "D vs C0: cost of auth + rate limit + metrics + access log",
            f"{cost:.0%}",
            "<= 15%",
            cost <= 0.15,
        )
    )
    e = row("E", "gateway")
    if e is not None:
        result = e.c10k  # type: ignore[attr-defined]
        ok = result.ok == result.opened and result.seconds <= 20 and (e.rss_mb or 0) < 1024
        checks.append(("E: C10k all 200 within 20 s, RSS < 1 GiB", e.note, "all, 20 s, 1 GiB", ok))
    return "\n".join(
        f"- {name}: {value} (target {target}): {'met' if ok else 'MISSED'}"
        for name, value, target, ok in [*checks, *extra]
    )


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C: what was measured is printed above, quietly
        sys.stderr.write("make bench: interrupted\n")
        raise SystemExit(130) from None
