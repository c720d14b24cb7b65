"""A stub upstream for integration tests, run as its own process:

    python -m tests.integration.stub --port N

Behaviour is chosen by path, so one process serves a whole test module:

    /echo/...              JSON of what arrived: method, raw path, query, headers, body size
    /delay/{ms}/...        waits, then echoes (also ?ms= on any path)
    /status/{code}         answers that status with a small JSON body
    /json?body=...         answers the given JSON text verbatim
    /text                  a non-JSON body
    /big/{bytes}           streams that many bytes (1 MiB chunks), as application/octet-stream
    /bigjson/{bytes}       a JSON string of about that many bytes
    /huge/...              a JSON string of 10 MB, whatever follows /huge
    /objects/{n}           a JSON list of n small objects (parsing costs far more than the bytes)
    /bigchunked/{bytes}    that many bytes of JSON whitespace, chunked (no Content-Length)
    /dribble/{n}/{ms}      n chunks, one every ms milliseconds (a valid JSON list)
    /sse/{n}/{ms}          n server-sent events, one every ms milliseconds
    /gzipped               JSON the stub encoded itself (Content-Encoding: gzip)
    /etag                  JSON (about 4 KiB) with a strong ETag
    /hang                  never answers; notes when the caller disconnects
    /cookie/set            answers with two Set-Cookie headers
    /redirect              302 to /echo
    /hop-headers           answers with hop-by-hop headers (and one end-to-end)
    /flaky/{id}/{n}        fails n times (503) for this id, then answers 200
    /users/{id} ...        demo-ish JSON: {"id", "account_id"}
    /jwks.json             the JWKS last set with POST /_jwks (counts fetches in stats)
    /cors                  answers with its own Access-Control-Allow-Origin: *
    /healthz               200, or 503 after /_sick?on=1 (active health checks)
    /_sick?on=1|0          /healthz fails (1) or passes (0)
    /_down?on=1|0          every other path answers 503 (1), or as usual again (0)
    /_stats                {"paths": {path: count}, "disconnects": n, "active": n}
    /_reset                clears the stats
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gzip
import re
import ssl
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs

import orjson
import uvicorn

STATS: dict[str, Any] = {"paths": collections.Counter(), "disconnects": 0, "active": 0}
JWKS: dict[str, Any] = {"keys": []}
FLAKY: collections.Counter[str] = collections.Counter()
SWITCHES = {"sick": False, "down": False}


async def _send_filler(send: Any, byte: bytes, total: int, *, end: bytes) -> None:
    """`total` copies of `byte` in 1 MiB chunks, then `end` as the last chunk."""
    chunk = byte * (1 << 20)
    sent = 0
    while sent < total:
        part = chunk[: min(len(chunk), total - sent)]
        await send({"type": "http.response.body", "body": part, "more_body": True})
        sent += len(part)
    await send({"type": "http.response.body", "body": end})


async def _start(send: Any, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def _json(
    send: Any, status: int, body: object, extra: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    content = orjson.dumps(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
    ]
    await _start(send, status, headers + list(extra))
    await send({"type": "http.response.body", "body": content})


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path: str = scope["path"]
    raw_path = scope.get("raw_path", path.encode()).decode("latin-1")
    query = parse_qs(scope["query_string"].decode("latin-1"))
    if path == "/_stats":
        await _json(send, 200, {**STATS, "paths": dict(STATS["paths"])})
        return
    if path == "/_jwks":
        JWKS.clear()
        JWKS.update(orjson.loads(await _read_body(receive)))
        await _json(send, 200, {})
        return
    if path in ("/_sick", "/_down"):
        SWITCHES[path[2:]] = query.get("on", ["1"])[0] == "1"
        await _json(send, 200, SWITCHES)
        return
    if path == "/healthz":
        STATS["paths"][path] += 1
        await _json(send, 503 if SWITCHES["sick"] else 200, {"sick": SWITCHES["sick"]})
        return
    if SWITCHES["down"]:
        STATS["paths"][raw_path] += 1
        await _json(send, 503, {"error": "down"})
        return
    if path == "/_reset":
        STATS["paths"].clear()
        STATS["disconnects"] = 0
        FLAKY.clear()
        await _json(send, 200, {})
        return
    STATS["paths"][raw_path] += 1
    STATS["active"] += 1
    try:
        await _route(scope, receive, send, path, raw_path, query)
    finally:
        STATS["active"] -= 1


async def _route(
    scope: dict[str, Any],
    receive: Any,
    send: Any,
    path: str,
    raw_path: str,
    query: dict[str, list[str]],
) -> None:
    body = await _read_body(receive)
    if "ms" in query:
        await asyncio.sleep(int(query["ms"][0]) / 1000)
    if m := re.fullmatch(r"/delay/(\d+)(/.*)?", path):
        await asyncio.sleep(int(m.group(1)) / 1000)
    if path.startswith(("/echo", "/delay", "/v2/")):
        await _json(
            send,
            200,
            {
                "method": scope["method"],
                "path": path,
                "raw_path": raw_path,
                "query": scope["query_string"].decode("latin-1"),
                "headers": [
                    [k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]
                ],
                "body_size": len(body),
                "body": body[:200].decode("latin-1"),
            },
        )
    elif m := re.fullmatch(r"/status/(\d+)", path):
        await _json(
            send, int(m.group(1)), {"error": "as requested", "secret": "upstream-internal-detail"}
        )
    elif path.startswith("/huge/"):
        await _start(send, 200, [(b"content-type", b"application/json")])
        await send({"type": "http.response.body", "body": b'"', "more_body": True})
        await _send_filler(send, b"x", 10_000_000, end=b'"')
    elif path == "/json":
        content = query.get("body", ["{}"])[0].encode()
        await _start(
            send,
            200,
            [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
            ],
        )
        await send({"type": "http.response.body", "body": content})
    elif path == "/text":
        await _start(send, 200, [(b"content-type", b"text/plain")])
        await send({"type": "http.response.body", "body": b"hello, not json"})
    elif m := re.fullmatch(r"/big/(\d+)", path):
        total = int(m.group(1))
        await _start(
            send,
            200,
            [
                (b"content-type", b"application/octet-stream"),
                (b"content-length", str(total).encode()),
            ],
        )
        await _send_filler(send, b"x", total, end=b"")
    elif m := re.fullmatch(r"/bigchunked/(\d+)", path):
        total = int(m.group(1))
        await _start(send, 200, [(b"content-type", b"application/json")])
        await _send_filler(send, b" ", total, end=b"{}")
    elif m := re.fullmatch(r"/objects/(\d+)", path):
        await _json(
            send, 200, [{"id": i, "name": f"n{i}", "ok": True} for i in range(int(m.group(1)))]
        )
    elif m := re.fullmatch(r"/bigjson/(\d+)", path):
        await _json(send, 200, {"blob": "y" * int(m.group(1))})
    elif m := re.fullmatch(r"/dribble/(\d+)/(\d+)", path):
        n, ms = int(m.group(1)), int(m.group(2))
        await _start(send, 200, [(b"content-type", b"application/json")])
        await send({"type": "http.response.body", "body": b"[0", "more_body": True})
        for i in range(1, n):
            await asyncio.sleep(ms / 1000)
            await send({"type": "http.response.body", "body": b",%d" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b"]"})
    elif m := re.fullmatch(r"/sse/(\d+)/(\d+)", path):
        n, ms = int(m.group(1)), int(m.group(2))
        await _start(send, 200, [(b"content-type", b"text/event-stream")])
        for i in range(n):
            if i:
                await asyncio.sleep(ms / 1000)
            event = b'id: %d\ndata: {"n": %d, "pad": "%s"}\n\n' % (i, i, b"p" * 200)
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/gzipped":
        content = gzip.compress(orjson.dumps({"items": ["same"] * 500}))
        await _start(
            send,
            200,
            [
                (b"content-type", b"application/json"),
                (b"content-encoding", b"gzip"),
                (b"content-length", str(len(content)).encode()),
            ],
        )
        await send({"type": "http.response.body", "body": content})
    elif path == "/etag":
        content = orjson.dumps({"items": [{"id": i, "name": "item"} for i in range(150)]})
        await _start(
            send,
            200,
            [
                (b"content-type", b"application/json"),
                (b"etag", b'"v1"'),
                (b"content-length", str(len(content)).encode()),
            ],
        )
        await send({"type": "http.response.body", "body": content})
    elif path == "/hang":
        while (await receive())["type"] != "http.disconnect":
            pass
        STATS["disconnects"] += 1
    elif path == "/cookie/set":
        await _json(
            send,
            200,
            {"ok": True},
            [
                (b"set-cookie", b"session=alice-secret; Path=/"),
                (b"set-cookie", b"theme=dark; Path=/"),
            ],
        )
    elif path == "/jwks.json":
        await _json(send, 200, JWKS)
    elif path == "/cors":
        await _json(
            send,
            200,
            {"ok": True},
            [(b"access-control-allow-origin", b"*"), (b"access-control-max-age", b"1")],
        )
    elif path == "/hop-headers":
        await _start(
            send,
            200,
            [
                (b"content-type", b"application/json"),
                (b"content-length", b"2"),
                (b"connection", b"x-internal"),
                (b"x-internal", b"secret"),
                (b"keep-alive", b"timeout=5"),
                (b"proxy-authenticate", b"Basic"),
                (b"trailer", b"x-checksum"),
                (b"x-end-to-end", b"kept"),
            ],
        )
        await send({"type": "http.response.body", "body": b"{}"})
    elif path == "/redirect":
        await _start(send, 302, [(b"location", b"/echo"), (b"content-length", b"0")])
        await send({"type": "http.response.body", "body": b""})
    elif m := re.fullmatch(r"/flaky/([^/]+)/(\d+)", path):
        FLAKY[m.group(1)] += 1
        if FLAKY[m.group(1)] <= int(m.group(2)):
            await _json(send, 503, {"error": "flaky"})
        else:
            await _json(send, 200, {"ok": True, "attempt": FLAKY[m.group(1)]})
    elif m := re.fullmatch(r"/users/([^/]+)", path):
        await _json(
            send,
            200,
            {"id": m.group(1), "name": "User " + m.group(1), "account_id": "acc-" + m.group(1)},
        )
    elif m := re.fullmatch(r"/accounts/([^/]+)", path):
        await _json(send, 200, {"account": m.group(1), "balance": 10})
    else:
        await _json(send, 404, {"error": "no such stub path", "path": path})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backlog", type=int, default=2048)
    parser.add_argument("--certfile", help="serve TLS with this certificate (and --keyfile)")
    parser.add_argument("--keyfile")
    parser.add_argument("--client-ca", help="require client certificates this CA signed (mTLS)")
    args = parser.parse_args()
    tls: dict[str, Any] = {}
    if args.certfile:
        tls = {"ssl_certfile": args.certfile, "ssl_keyfile": args.keyfile}
    if args.client_ca:
        tls |= {"ssl_ca_certs": args.client_ca, "ssl_cert_reqs": ssl.CERT_REQUIRED}
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        backlog=args.backlog,
        loop="uvloop",
        http="httptools",
        **tls,
    )


if __name__ == "__main__":
    main()
