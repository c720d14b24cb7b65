"""An upstream that misbehaves on purpose, for the framing tests (SPEC 3.10):

    python -m tests.hostile --port N [--stock-port M]

Every answer names the marker of the request it answers (the last path
segment), so a client can tell its own answer from anybody else's. By path:

    /ok/<m>            a well-framed JSON answer: {"marker": m}
    /trailing/<m>      the answer, then (same write) bytes that look like another answer
    /two/<m>           two whole answers in one write: its own, then a planted one
    /late/<m>          the answer, then a planted answer 2 ms later (a separate write)
    /204/<m>, /304/<m> that status with a body anyway (Content-Length and all)
    /head/<m>          to HEAD: the headers, then the body in a separate write
    /slow204/<m>, /slow304/<m>, /slowhead/<m>
                       the same, the body 30 ms after the headers (to GET; to HEAD)
    /headers/<m>       an endless header block
    /switch/<m>        101 Switching Protocols to a plain request
    /gzip/<m>          Content-Encoding: gzip over bytes that are not gzip

Planted answers carry the marker "planted". With --stock-port, Python's own
http.server also listens there with do_HEAD = do_GET (it sends a body to HEAD).

`hammer()` is the client side (tests/integration/test_limits.py, make bench):
misbehaving requests interleaved with innocent ones through a gateway whose
routes are those of test_limits.py, each with a unique marker.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import socket
import threading

import httpx
import orjson


def answer(marker: bytes, status: bytes = b"200 OK", extra: bytes = b"") -> bytes:
    body = orjson.dumps({"marker": marker.decode("latin-1")})
    return (
        b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n" % len(body) + extra + b"\r\n" + body
    )


PLANTED = answer(b"planted")


class Hostile(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            method, target = head.split(b" ", 2)[:2]
            parts = target.split(b"?")[0].strip(b"/").split(b"/")
            mode, marker = parts[0], parts[-1]
            asyncio.get_running_loop().create_task(self.respond(method, mode, marker))

    async def respond(self, method: bytes, mode: bytes, marker: bytes) -> None:
        write = self.write
        if mode == b"trailing":
            write(answer(marker) + b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nplanted")
        elif mode == b"two":
            write(answer(marker) + PLANTED)
        elif mode == b"late":
            write(answer(marker))
            await asyncio.sleep(0.002)
            write(PLANTED)
        elif mode in (b"204", b"304"):
            status = b"204 No Content" if mode == b"204" else b"304 Not Modified"
            write(answer(marker, status) + PLANTED)
        elif mode == b"head" and method == b"HEAD":
            full = answer(marker)
            head = full.partition(b"\r\n\r\n")[0]
            write(head + b"\r\n\r\n")
            await asyncio.sleep(0.002)
            write(PLANTED)  # the "body": bytes that also look like an answer
        elif mode in (b"slow204", b"slow304") or (mode == b"slowhead" and method == b"HEAD"):
            slow = {b"slow204": b"204 No Content", b"slow304": b"304 Not Modified"}
            full = answer(marker, slow.get(mode, b"200 OK"))
            head, _, body = full.partition(b"\r\n\r\n")
            write(head + b"\r\n\r\n")
            await asyncio.sleep(0.03)
            write(body)
        elif mode == b"headers":
            write(b"HTTP/1.1 200 OK\r\n")
            for _ in range(200_000):  # 200 MB, unless the client hangs up first
                if self.transport is None or self.transport.is_closing():
                    return
                write(b"X-Filler: " + b"f" * 1000 + b"\r\n")
                await asyncio.sleep(0)
        elif mode == b"switch":
            write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
            )
            write(PLANTED)
        elif mode == b"gzip":
            write(answer(marker, extra=b"Content-Encoding: gzip\r\n"))
        else:
            write(answer(marker))

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


class StockHandler(http.server.BaseHTTPRequestHandler):
    """What Python's http.server users write: HEAD answered like GET, body and all."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = orjson.dumps({"marker": self.path.rstrip("/").rsplit("/", 1)[-1]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:
        return


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(
        Hostile, "127.0.0.1", port, backlog=2048
    )
    await server.serve_forever()


# --- clients: many at once, each with its own marker ----------------------------
# The gateway routes hammer() expects (upstream URLs from ${HOSTILE} and
# ${STOCK}). A file may add upstreams in place of EXTRA_UPSTREAMS, and routes
# after the end (the routes list comes last).
EXTRA_UPSTREAMS = "  # more upstreams\n"
HOSTILE_ROUTES = """
version: 1
upstreams:
  hostile: {url: "${HOSTILE}", timeout: 2s, max_header_size: 16KiB, max_connections: 8}
  stock: {url: "${STOCK}", timeout: 2s, max_connections: 4}
  # more upstreams
routes:
  - name: proxy
    path: /p/{rest:path}
    methods: [GET, HEAD]
    proxy: {upstream: hostile, path: "/{rest}"}
  - name: stock
    path: /stock/{rest:path}
    methods: [GET, HEAD]
    proxy: {upstream: stock, path: "/{rest}"}
  - name: aggregate
    path: /a/{mode}/{marker}
    backends: [{upstream: hostile, path: "/{mode}/{marker}", key: r}]
  - name: optional
    path: /o/{mode}/{marker}
    backends:
      - {upstream: hostile, path: "/ok/{marker}", key: ok}
      - {upstream: hostile, path: "/{mode}/{marker}", key: bad, required: false}
"""


def marker_of(response: httpx.Response) -> str | None:
    if not response.content:
        return None
    body = response.json()
    return body.get("marker") or body.get("r", {}).get("marker") or body.get("ok", {}).get("marker")


MODES = ["trailing", "two", "late", "204", "304", "head", "stock-head", "switch", "gzip"]


def request_for(mode: str, marker: str, kind: str) -> tuple[str, str]:
    """(method, path) of a request that makes the upstream misbehave."""
    if mode == "stock-head":
        return "HEAD", f"/stock/x/{marker}"
    if mode == "head":
        return "HEAD", f"/p/head/{marker}"
    return "GET", (f"/p/{mode}/{marker}" if kind == "proxy" else f"/a/{mode}/{marker}")


async def hammer(url: str, mode: str, kind: str, requests: int) -> list[str]:
    """Interleave misbehaving requests with innocent ones, 32 at a time, every
    one with its own marker; return what went wrong."""
    wrong: list[str] = []
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=20) as client:
        gate = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            marker = f"{mode}-{kind}-{i}"
            innocent = i % 2 == 0
            if innocent:
                method = "GET"
                path = f"/p/ok/{marker}" if kind == "proxy" else f"/a/ok/{marker}"
                if mode == "stock-head":
                    path = f"/stock/x/{marker}"
            else:
                method, path = request_for(mode, marker, kind)
            async with gate:
                response = await client.request(method, path)
            got = (
                marker_of(response)
                if response.headers.get("content-type", "").startswith("application/json")
                else None
            )
            if innocent and (response.status_code != 200 or got != marker):
                wrong.append(f"innocent {path}: {response.status_code} {got}")
            elif not innocent and got not in (None, marker):
                wrong.append(f"{method} {path}: {response.status_code} {got}")
            if b"planted" in response.content:
                wrong.append(f"{path}: planted bytes")
            if len(response.headers.get_list("content-length")) > 1:
                wrong.append(f"{path}: two Content-Length headers")

        await asyncio.gather(*(one(i) for i in range(requests)))
    return wrong


def flood(port: int, opening: bytes, size: int) -> bytes:
    """A hostile client: `opening`, then `size` bytes of "a" as fast as the
    gateway takes them; returns whatever it answered before closing."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(opening)
        chunk, sent = b"a" * 65536, 0
        try:
            while sent < size:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        sock.settimeout(5)
        try:
            while part := sock.recv(65536):
                answer += part
        except OSError:
            pass
    return answer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--stock-port", type=int)
    args = parser.parse_args()
    if args.stock_port:
        stock = http.server.ThreadingHTTPServer(("127.0.0.1", args.stock_port), StockHandler)
        threading.Thread(target=stock.serve_forever, daemon=True).start()
    asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
