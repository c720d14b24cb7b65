"""The pool's promises (gateway/upstream/h1/pool.py), against raw sockets: a
slot or a settled connection always reaches the first waiter, an idle
connection with anything to read is never reused, and an origin that broke
its framing is never trusted with a reused connection again."""

from __future__ import annotations

import asyncio
import http.server
import statistics
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from gateway.observe import metrics
from gateway.upstream.h1 import H1Transport
from tests.rawserver import RawServer, read_request

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def transport(max_connections: int = 1) -> H1Transport:
    return H1Transport(max_connections=max_connections, keepalive_expiry=30, name="pooltest")


def discards(reason: str) -> float:
    return metrics.UPSTREAM_DISCARDS.labels("pooltest", reason)._value.get()


async def serve_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        await read_request(reader)
        writer.write(OK)
        await writer.drain()


async def test_a_request_right_after_another_gets_the_settled_connection() -> None:
    """With one connection, a request that arrives while the last answer's
    connection settles is handed that connection once it has settled: it
    never waits for the pool timeout (which once took 3 s here)."""
    server = RawServer(serve_ok)
    async with httpx.AsyncClient(transport=transport(), timeout=3) as client, server as port:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(20):
            started = time.perf_counter()
            assert (await client.get(url)).status_code == 200
            assert time.perf_counter() - started < 0.5
        assert server.connections == 1


@pytest.mark.parametrize("kind", ["HEAD", "204", "304"])
async def test_answers_with_late_bodies_give_their_slot_back_at_once(kind: str) -> None:
    """An answer that ends at its headers while a body follows later (HEAD,
    204, 304 with a Content-Length) costs its connection; the slot goes to
    the next caller at once, for misframed and innocent requests alike."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, _ = await read_request(reader)
            marker = head.split(b" ")[1]
            if b"/bad" in marker:
                status = {"HEAD": b"200 OK", "204": b"204 No Content", "304": b"304 Not Modified"}
                writer.write(b"HTTP/1.1 %s\r\nContent-Length: 13\r\n\r\n" % status[kind])
                await writer.drain()
                await asyncio.sleep(0.03)
                writer.write(b'{"late":true}')
            else:
                body = b'{"path":"%s"}' % marker
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()

    server = RawServer(handler)
    async with httpx.AsyncClient(transport=transport(), timeout=3) as client, server as port:
        url = f"http://127.0.0.1:{port}"

        async def bad(i: int) -> int:
            method = "HEAD" if kind == "HEAD" else "GET"
            return (await client.request(method, f"{url}/bad/{i}")).status_code

        async def good(i: int) -> str:
            return str((await client.get(f"{url}/ok/{i}")).json()["path"])

        started = time.perf_counter()
        calls: list[asyncio.Task[object]] = []
        for i in range(3):
            calls.append(asyncio.create_task(bad(i)))
            await asyncio.sleep(0.003)
            calls.append(asyncio.create_task(good(i)))
            await asyncio.sleep(0.003)
        results = await asyncio.gather(*calls)
        elapsed = time.perf_counter() - started
    expected_status = {"HEAD": 200, "204": 204, "304": 304}[kind]
    assert results == [expected_status, "/ok/0", expected_status, "/ok/1", expected_status, "/ok/2"]
    assert elapsed < 1.5  # six calls in turn on one connection slot, none waiting 3 s


async def test_an_idle_connection_with_bytes_waiting_is_never_reused() -> None:
    """Bytes the upstream sent while the connection sat idle, not yet read by
    the loop, are found by the poll before reuse: a new connection serves."""
    chatter = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK)
        await writer.drain()
        await chatter.wait()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nplanted")
        await writer.drain()
        await serve_ok(reader, writer)

    server = RawServer(handler)
    before = discards("unsolicited")
    h1 = transport(max_connections=2)
    async with httpx.AsyncClient(transport=h1, timeout=3) as client, server as port:
        url = f"http://127.0.0.1:{port}/"
        assert (await client.get(url)).text == "ok"
        await asyncio.sleep(0.02)  # settled: idle in the pool
        pool = next(iter(h1._pools.values()))
        (idle,) = [*pool._settling, *pool._idle]
        assert idle.transport is not None
        idle.transport.pause_reading()  # what arrives now stays in the kernel
        chatter.set()
        await asyncio.sleep(0.05)
        assert (await client.get(url)).text == "ok"
    assert server.connections == 2
    assert discards("unsolicited") == before + 1


async def test_an_origin_that_broke_framing_is_never_reused_again() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, _ = await read_request(reader)
            writer.write(OK + (b"planted" if b"/bad" in head else b""))
            await writer.drain()

    server = RawServer(handler)
    before = discards("framing")
    h1 = transport(max_connections=4)
    async with httpx.AsyncClient(transport=h1, timeout=3) as client, server as port:
        url = f"http://127.0.0.1:{port}"
        assert (await client.get(url + "/ok")).text == "ok"
        await asyncio.sleep(0.02)
        assert (await client.get(url + "/ok")).text == "ok"
        assert server.connections == 1  # reused while it behaved
        await asyncio.sleep(0.02)
        assert (await client.get(url + "/bad")).text == "ok"  # its own answer, as framed
        for _ in range(4):
            await asyncio.sleep(0.02)
            assert (await client.get(url + "/ok")).text == "ok"
        pool = next(iter(h1._pools.values()))
        assert pool.distrusted
    assert server.connections == 1 + 4  # one per request since the violation
    assert discards("framing") == before + 1


class _Unbuffered(http.server.BaseHTTPRequestHandler):
    """Python's http.server: headers and body in separate writes, no TCP_NODELAY."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def stdlib_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unbuffered)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


async def test_an_answer_split_by_nagle_is_acknowledged_at_once(stdlib_server: int) -> None:
    """Without the immediate ACK each reused call waited ~40 ms for the
    body (the upstream's Nagle waiting for Linux's delayed ACK)."""
    async with httpx.AsyncClient(transport=transport(), timeout=3) as client:
        times = []
        for _ in range(15):
            started = time.perf_counter()
            assert (await client.get(f"http://127.0.0.1:{stdlib_server}/")).json() == {"ok": True}
            times.append(time.perf_counter() - started)
            await asyncio.sleep(0.01)
    assert statistics.median(times) < 0.02, times
