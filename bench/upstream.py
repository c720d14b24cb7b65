"""A stub upstream fast enough never to be what a benchmark measures.

    python -m bench.upstream --port 9101 [--port 9102 ...]

A bare asyncio protocol (uvloop when installed) answering every request with a
small fixed JSON body. A path starting with /delay/<ms>/ answers after that
many milliseconds, without blocking anything else; /objects/<MB> answers
about that many megabytes of small JSON objects (built once, then cached);
/kb/<n> about n KiB of user records (a typical API answer, for compression).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket

BODY = (
    b'{"id": 42, "name": "Ada Lovelace", "email": "ada@example.com", "account_id": "acc-0042",'
    b' "plan": "pro", "tags": ["math", "engines"], "created": "1843-07-10T00:00:00Z"}'
)


def respond_with(body: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    return head % len(body) + body


RESPONSE = respond_with(BODY)
_OBJECTS: dict[int, bytes] = {}


def objects(megabytes: int) -> bytes:
    """About `megabytes` MB of small objects: cheap to send, costly to parse."""
    if megabytes not in _OBJECTS:
        count = megabytes * 1_000_000 // 40
        items = b",".join(b'{"id":%d,"name":"n%d","ok":true}' % (i, i) for i in range(count))
        _OBJECTS[megabytes] = respond_with(b"[" + items + b"]")
    return _OBJECTS[megabytes]


_RECORDS: dict[int, bytes] = {}


def records(kib: int) -> bytes:
    """About `kib` KiB of user records, each different (ids, names, numbers)."""
    if kib not in _RECORDS:
        items, size, i = [], 2, 0
        while size < kib * 1024:
            item = (
                b'{"id":%d,"name":"User %d","email":"user%d@example.com","account_id":"acc-%05d",'
                b'"plan":"%s","balance":%d.%02d,"active":%s,"tags":["t%d","t%d"]}'
                % (i, i, i, i * 7, (b"free", b"pro", b"team")[i % 3], i * 37 % 1000, i % 100,
                   (b"true", b"false")[i % 2], i % 5, i % 11)
            )  # fmt: skip
            items.append(item)
            size += len(item) + 1
            i += 1
        _RECORDS[kib] = respond_with(b"[" + b",".join(items) + b"]")
    return _RECORDS[kib]


class Stub(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport
        with contextlib.suppress(OSError):
            transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            self.buffer = self.buffer[length:]  # bench requests carry no body worth reading
            path = head.split(b" ", 2)[1]
            if path.startswith(b"/delay/"):
                delay = int(path.split(b"/")[2]) / 1000
                asyncio.get_running_loop().call_later(delay, self.respond)
            elif path.startswith(b"/objects/"):
                self.respond(objects(int(path.split(b"/")[2])))
            elif path.startswith(b"/kb/"):
                self.respond(records(int(path.split(b"/")[2])))
            else:
                self.respond()

    def respond(self, response: bytes = RESPONSE) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(response)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(ports: list[int], backlog: int) -> None:
    loop = asyncio.get_running_loop()
    servers = [await loop.create_server(Stub, "127.0.0.1", port, backlog=backlog) for port in ports]
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, action="append", required=True)
    parser.add_argument("--backlog", type=int, default=16384)
    args = parser.parse_args()
    run = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        run = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        run(serve(args.port, args.backlog))


if __name__ == "__main__":
    main()
