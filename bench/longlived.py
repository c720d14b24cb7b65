"""make bench: long-lived connections (README, Performance).

W  9,000 WebSockets held through one gateway, each sending 64 bytes every 10 s
   and waiting for the echo: all connected, every echo within 1 s, RSS < 1 GiB
R  message relay, 64 connections ping-ponging 1 KiB messages: messages per
   second through the gateway vs straight to the echo upstream (>= 40%)
S  5,000 event streams, one event a second each: every event delivered, p99
   delay added by the gateway < 50 ms
P  progressive aggregation, backends after 20, 100 and 200 ms: median time
   to the first record within 10 ms of the fastest backend's, straight

The clients run in this process on the load CPU (beside the upstream), the
gateway alone on its own; the peers on the load side are bare asyncio
protocols (bench/liveupstream.py, bench/wsframes.py), so that what is
measured is the gateway. BENCH_WS (9000), BENCH_SSE (5000) and
BENCH_HOLD_SECONDS (20) size W and S.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from bench.wsframes import Frames, frame

if TYPE_CHECKING:
    from bench.__main__ import Bench, Process
    from bench.limits import Check

WEBSOCKETS = int(os.environ.get("BENCH_WS", "9000"))
STREAMS = int(os.environ.get("BENCH_SSE", "5000"))
HOLD = float(os.environ.get("BENCH_HOLD_SECONDS", "20"))
FASTEST_MS = 20

# Every connection comes from one machine, so from one client as far as
# max_streams_per_client (default 20) can tell: the limit is raised here.
ROUTES = """
version: 1
settings: {{max_streams_per_client: 20000}}
upstreams:
  live: {{url: "http://127.0.0.1:{live}", timeout: 5s, max_connections: 20000}}
  u0: {{url: "http://127.0.0.1:{u0}", timeout: 5s, max_connections: 1000}}
  u1: {{url: "http://127.0.0.1:{u1}", timeout: 5s, max_connections: 1000}}
  u2: {{url: "http://127.0.0.1:{u2}", timeout: 5s, max_connections: 1000}}
routes:
  - name: ws-echo
    path: /ws/echo
    websocket: {{upstream: live, path: /echo, max_message_size: 64KiB, idle_timeout: 5m}}
  - name: events
    path: /events
    proxy: {{upstream: live, path: /sse, idle_timeout: 10s}}
  - name: progressive
    path: /progressive
    stream: true
    backends:
      - {{upstream: u0, path: /delay/{fastest}/users/1, key: fast}}
      - {{upstream: u1, path: /delay/100/users/2, key: mid}}
      - {{upstream: u2, path: /delay/200/users/3, key: slow}}
"""


def run_all(
    bench: Bench, start: Callable[..., Process], free_port: Callable[[], int], load_cpu: str
) -> list[Check]:
    from bench.__main__ import pinned

    port = free_port()
    upstream = start(
        pinned(load_cpu, [sys.executable, "-m", "bench.liveupstream", "--port", str(port)]),
        port,
        "/",
    )
    routes = bench.workdir / "routes-live.yaml"
    u0, u1, u2 = bench.stub_ports
    routes.write_text(ROUTES.format(live=port, u0=u0, u1=u1, u2=u2, fastest=FASTEST_MS))
    checks: list[Check] = []
    try:
        for name, scenario in (
            ("W", hold_websockets),
            ("R", relay),
            ("S", streams),
            ("P", progressive),
        ):
            sys.stderr.write(f"  {name}\n")
            checks += scenario(bench, routes, port, load_cpu)
    finally:
        upstream.stop()
    return checks


# --- the scenarios -------------------------------------------------------------------
def hold_websockets(bench: Bench, routes: Path, live: int, load_cpu: str) -> list[Check]:
    gateway = bench.gateway(routes=routes)
    try:
        with peak_rss(gateway) as peak:
            held = on_cpu(load_cpu, _hold(gateway.port, "/ws/echo", WEBSOCKETS, HOLD))
    finally:
        gateway.stop()
    late = [s for s in held.latencies if s > 1.0]
    value = (
        f"{held.connected:,}/{WEBSOCKETS:,} connected in {held.connect_seconds:.1f} s;"
        f" {len(held.latencies):,} echoes of {held.sent:,}, p50 {ms(held.latencies, 50)},"
        f" p99 {ms(held.latencies, 99)}, max {ms(held.latencies, 100)};"
        f" {held.dropped:,} closed early; peak RSS {peak[0] / 1024:.0f} MB"
    )
    ok = (
        held.connected == WEBSOCKETS
        and held.dropped == 0
        and len(held.latencies) == held.sent
        and not late
        and peak[0] < 1024 * 1024
    )
    return [(f"W: {WEBSOCKETS:,} WebSockets, 64 B echo each 10 s", value, "all, 1 s, 1 GiB", ok)]


def relay(bench: Bench, routes: Path, live: int, load_cpu: str) -> list[Check]:
    """Interleaved rounds (direct, then through a fresh gateway): the median
    ratio, since the machine's speed drifts between measurements."""
    seconds = float(os.environ.get("BENCH_SECONDS", "6"))
    rounds = []
    for _ in range(int(os.environ.get("BENCH_ROUNDS", "3"))):
        direct = on_cpu(load_cpu, _relay(live, "/echo", 64, seconds))
        gateway = bench.gateway(routes=routes)
        try:
            through = on_cpu(load_cpu, _relay(gateway.port, "/ws/echo", 64, seconds))
        finally:
            gateway.stop()
        rounds.append((through / direct if direct else 0.0, through, direct))
    ratio, through, direct = sorted(rounds)[len(rounds) // 2]
    value = (
        f"{through:,.0f} vs {direct:,.0f} msg/s direct = {ratio:.2f}x"
        f" (median of {len(rounds)}: {', '.join(f'{r:.2f}' for r, _, _ in rounds)})"
    )
    return [("R: 1 KiB message relay vs direct, 64 connections", value, ">= 0.40x", ratio >= 0.4)]


def streams(bench: Bench, routes: Path, live: int, load_cpu: str) -> list[Check]:
    direct = on_cpu(load_cpu, _streams(live, "/sse", STREAMS, HOLD))
    gateway = bench.gateway(routes=routes)
    try:
        with peak_rss(gateway) as peak:
            through = on_cpu(load_cpu, _streams(gateway.port, "/events", STREAMS, HOLD))
    finally:
        gateway.stop()
    added = percentile(through.delays, 99) - percentile(direct.delays, 99)
    value = (
        f"{through.opened:,}/{STREAMS:,} open, {len(through.delays):,} events, {through.gaps} lost;"
        f" delay p50 {ms(through.delays, 50)}, p99 {ms(through.delays, 99)}"
        f" (direct p99 {ms(direct.delays, 99)}); peak RSS {peak[0] / 1024:.0f} MB"
    )
    ok = through.opened == STREAMS and through.gaps == 0 and added < 0.050
    expected = STREAMS * (HOLD - 1)
    ok = ok and len(through.delays) >= expected
    return [(f"S: {STREAMS:,} event streams, 1 event/s", value, "all, p99 + < 50 ms", ok)]


def progressive(bench: Bench, routes: Path, live: int, load_cpu: str) -> list[Check]:
    """Time to the first record against the same client's time to the fastest
    backend's answer straight from it, 16 at a time."""
    seconds = float(os.environ.get("BENCH_SECONDS", "6"))
    fastest = bench.stub_ports[0]
    direct = on_cpu(load_cpu, _first_bytes(fastest, f"/delay/{FASTEST_MS}/users/1", 16, seconds))
    gateway = bench.gateway(routes=routes)
    try:
        firsts = on_cpu(load_cpu, _first_records(gateway.port, "/progressive", 16, seconds))
    finally:
        gateway.stop()
    added = percentile(firsts, 50) - percentile(direct, 50)
    value = (
        f"{len(firsts):,} streams: first record p50 {ms(firsts, 50)}, p99 {ms(firsts, 99)};"
        f" the fastest backend ({FASTEST_MS} ms) straight: p50 {ms(direct, 50)},"
        f" p99 {ms(direct, 99)}; the slowest answers at 200 ms"
    )
    ok = bool(firsts) and added <= 0.010
    return [("P: progressive, time to first record", value, "p50 <= fastest + 10 ms", ok)]


# --- measuring -----------------------------------------------------------------------
def ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.1f} ms" if values else "-"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("inf")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


@contextlib.contextmanager
def peak_rss(process: Process) -> Iterator[list[int]]:
    """The process's peak resident set (KiB) while the block runs."""
    peak = [0]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                peak[0] = max(peak[0], process.status_kb("VmRSS"))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        yield peak
    finally:
        stop.set()
        watcher.join()


def on_cpu[T](cpu: str, coroutine: object) -> T:
    """Run the client on the load CPU (this thread only), with uvloop."""
    run = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        run = uvloop.run
    before = os.sched_getaffinity(0)
    with contextlib.suppress(OSError, ValueError):
        os.sched_setaffinity(0, {int(cpu)})
    try:
        return run(coroutine)  # type: ignore[arg-type,no-any-return]
    finally:
        os.sched_setaffinity(0, before)


class WsClient(asyncio.Protocol):
    """A bare WebSocket client: every message to `on_message`."""

    def __init__(self, path: str, on_message: Callable[[bytes], None]) -> None:
        self.path = path
        self.on_message = on_message
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.frames: Frames | None = None
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.closed_by_peer = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        with contextlib.suppress(OSError):
            transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport.write(
            f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        if self.frames is None:
            self.buffer += data
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in self.buffer[: self.buffer.find(b"\r\n")]:
                self.ready.set_exception(ConnectionError(self.buffer[:40].decode("latin-1")))
                return
            data, self.buffer, self.frames = self.buffer[end + 4 :], b"", Frames()
            self.ready.set_result(None)
        for opcode, payload in self.frames.feed(data):
            if opcode in (1, 2):
                self.on_message(payload)
            elif opcode == 9:  # uvicorn pings every 20 s: answer, as a browser would
                self.transport.write(frame(10, payload, masked=True))  # type: ignore[union-attr]
            elif opcode == 8:
                self.closed_by_peer = True

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed during the handshake"))

    @property
    def open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def send(self, payload: bytes) -> None:
        assert self.transport is not None
        self.transport.write(frame(2, payload, masked=True))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def ws_connect(port: int, path: str, on_message: Callable[[bytes], None]) -> WsClient:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: WsClient(path, on_message), "127.0.0.1", port)
    await asyncio.wait_for(client.ready, 30)
    return client


async def _open_all[C](n: int, opener: Callable[[], Awaitable[C]]) -> list[C]:
    """`n` connections, 200 opening at a time; those that failed are left out."""
    gate = asyncio.Semaphore(200)
    opened: list[C] = []

    async def open_one() -> None:
        async with gate:
            with contextlib.suppress(OSError, TimeoutError):
                opened.append(await opener())

    await asyncio.gather(*(open_one() for _ in range(n)))
    return opened


class Held:
    def __init__(self) -> None:
        self.connected = 0
        self.connect_seconds = 0.0
        self.sent = 0
        self.dropped = 0  # connections the gateway closed during the hold
        self.latencies: list[float] = []


async def _hold(port: int, path: str, n: int, seconds: float, period: float = 10.0) -> Held:
    held = Held()
    loop = asyncio.get_running_loop()

    def echoed(payload: bytes) -> None:
        held.latencies.append(time.perf_counter() - struct.unpack_from("d", payload)[0])

    started = time.perf_counter()
    clients = await _open_all(n, lambda: ws_connect(port, path, echoed))
    held.connected, held.connect_seconds = len(clients), time.perf_counter() - started
    end = loop.time() + seconds

    def send(client: WsClient) -> None:
        if loop.time() + 1.0 > end:  # the last echo must have a second to come back
            return
        if not client.open:
            held.dropped += 1
            return
        held.sent += 1
        client.send(struct.pack("d", time.perf_counter()) + b"x" * 56)
        loop.call_later(period, send, client)

    for client in clients:
        loop.call_later(random.random() * period, send, client)
    await asyncio.sleep(seconds)
    for client in clients:
        client.close()
    await asyncio.sleep(0.2)
    return held


async def _relay(port: int, path: str, connections: int, seconds: float) -> float:
    """Echoes per second with each connection keeping one 1 KiB message in flight."""
    counted = [0]
    running = [True]
    payload = b"m" * 1024
    clients: list[WsClient] = []

    def make_echo(index: int) -> Callable[[bytes], None]:
        def echoed(message: bytes) -> None:
            counted[0] += 1
            if running[0]:
                clients[index].send(message)

        return echoed

    for index in range(connections):
        clients.append(await ws_connect(port, path, make_echo(index)))
    for client in clients:
        client.send(payload)
    await asyncio.sleep(1.0)  # warm-up
    before, started = counted[0], time.perf_counter()
    await asyncio.sleep(seconds)
    rate = (counted[0] - before) / (time.perf_counter() - started)
    running[0] = False
    for client in clients:
        client.close()
    return rate


_EVENT = re.compile(rb'data: \{"n":(\d+),"t":([0-9.]+)\}')


class StreamClient(asyncio.Protocol):
    """An event-stream reader: the delay of each event, and events it missed."""

    def __init__(self, path: str, tally: Streams) -> None:
        self.path, self.tally = path, tally
        self.buffer = b""
        self.last = 0
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(  # type: ignore[attr-defined]
            f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.buffer += data
        end = 0
        for match in _EVENT.finditer(self.buffer):
            n, sent = int(match[1]), float(match[2])
            if self.last and n != self.last + 1:
                self.tally.gaps += n - self.last - 1
            self.last = n
            if self.tally.measuring:
                self.tally.delays.append(now - sent)
            end = match.end()
        self.buffer = self.buffer[end:] if end else self.buffer[-512:]


class Streams:
    def __init__(self) -> None:
        self.opened = 0
        self.gaps = 0
        self.measuring = False
        self.delays: list[float] = []


async def _streams(port: int, path: str, n: int, seconds: float) -> Streams:
    tally = Streams()
    loop = asyncio.get_running_loop()

    async def open_one() -> asyncio.BaseTransport:
        transport, _ = await loop.create_connection(
            lambda: StreamClient(path, tally), "127.0.0.1", port
        )
        return transport

    transports = await _open_all(n, open_one)
    tally.opened = len(transports)
    await asyncio.sleep(1.0)  # every stream has had its first event
    tally.measuring = True
    await asyncio.sleep(seconds)
    tally.measuring = False
    for transport in transports:
        transport.close()
    await asyncio.sleep(0.2)
    return tally


async def _first_bytes(port: int, path: str, concurrency: int, seconds: float) -> list[float]:
    """Time to the response head of a plain GET, each worker on one kept-alive connection."""
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            times.append(time.perf_counter() - started)
            length = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
            await reader.readexactly(int(length[1]) if length else 0)
        writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return times


async def _first_records(port: int, path: str, concurrency: int, seconds: float) -> list[float]:
    """Time from sending the request to the first record, each stream read to its end."""
    firsts: list[float] = []
    deadline = time.perf_counter() + seconds
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/x-ndjson\r\n"
        "Connection: close\r\n\r\n"
    ).encode()

    async def worker() -> None:
        while time.perf_counter() < deadline:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            started = time.perf_counter()
            writer.write(request)
            seen = b""
            while b'"event"' not in seen:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                seen += chunk
            firsts.append(time.perf_counter() - started)
            await reader.read()  # to the end: the last record, then the server closes
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return firsts
