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
    /headers/<m>       an endless header block
    /switch/<m>        101 Switching Protocols to a plain request
    /gzip/<m>          Content-Encoding: gzip over bytes that are not gzip

Planted answers carry the marker "planted". With --stock-port, Python's own
http.server also listens there with do_HEAD = do_GET (it sends a body to HEAD).
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import threading

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
