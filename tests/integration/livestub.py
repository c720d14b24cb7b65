"""A stub upstream for long-lived connections, run as its own process under
uvicorn (so its WebSockets are uvicorn's, as a real ASGI service's would be):

    python -m tests.integration.livestub --port N

WebSocket paths:

    /ws/echo/...        accepts (choosing the first subprotocol offered), then
                        echoes every message; text commands instead:
                          "close <code> <reason>"  closes with that code
                          "drop"                   ends without a close frame
                          "big <n>"                sends n bytes (binary)
                          "flood <n> <size>"       sends n binary messages of size
                                                   bytes, numbered, as fast as it may
                          "hello"                  sends the handshake it saw (JSON)
                          "mute <s>"               stops reading for s seconds
                          "sink"                   from now on, counts without echoing
    /ws/refuse/<status> answers the handshake with that HTTP status
    /ws/slow/<ms>       accepts after ms milliseconds

HTTP paths:

    /sse/every/<ms>         an event every ms, until the client leaves
    /sse/quiet/<n>/<ms>     n events, then silence for ms, then n more
    /sse/own-cache          an event stream with its own Cache-Control
    /sse/heavy/<kb>         events of that many KiB, back to back, until the client leaves
    /hang/<ms>              answers JSON after ms (a long poll)
    /_stats                 {"ws_open", "ws_opened", "ws_closes": [[code, reason]...],
                             "flood_sent", "sse_disconnects": [when each event
                             stream saw its client leave (time.time())...], "received": n}
    /_reset                 clears the stats
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from typing import Any

import orjson
import uvicorn

STATS: dict[str, Any] = {}


def _reset() -> None:
    STATS.update(ws_open=0, ws_opened=0, ws_closes=[], flood_sent=0, sse_disconnects=[], received=0)


_reset()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
    elif scope["type"] == "websocket":
        await _websocket(scope, receive, send)
    else:
        await _http(scope, receive, send)


# --- WebSockets ------------------------------------------------------------------
async def _websocket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()  # websocket.connect
    path = scope["path"]
    if m := re.fullmatch(r"/ws/refuse/(\d+)", path):
        body = b'{"refused": true}'
        headers = [(b"content-type", b"application/json"), (b"content-length", b"17")]
        start = {"type": "websocket.http.response.start", "status": int(m.group(1))}
        await send({**start, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
        return
    if m := re.fullmatch(r"/ws/slow/(\d+)", path):
        await asyncio.sleep(int(m.group(1)) / 1000)
    offered = scope.get("subprotocols") or []
    await send({"type": "websocket.accept", "subprotocol": offered[0] if offered else None})
    STATS["ws_open"] += 1
    STATS["ws_opened"] += 1
    try:
        await _echo(scope, receive, send)
    finally:
        STATS["ws_open"] -= 1


async def _echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    sink = False
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            STATS["ws_closes"].append([message.get("code"), message.get("reason") or ""])
            return
        STATS["received"] += 1
        text = message.get("text")
        command = text.split(" ", 2) if text is not None else [""]
        if command[0] == "close":
            await send({"type": "websocket.close", "code": int(command[1]), "reason": command[2]})
            STATS["ws_closes"].append(["sent", int(command[1])])
            return
        if command[0] == "drop":
            raise RuntimeError("dropped on purpose")  # uvicorn closes the socket, no frame
        if command[0] == "big":
            await send({"type": "websocket.send", "bytes": b"b" * int(command[1])})
        elif command[0] == "flood":
            for n in range(int(command[1])):
                body = n.to_bytes(4, "big") + b"f" * (int(command[2]) - 4)
                await send({"type": "websocket.send", "bytes": body})
                STATS["flood_sent"] = n + 1
        elif command[0] == "hello":
            hello = {
                "path": scope["path"],
                "query": scope["query_string"].decode(),
                "headers": [[n.decode(), v.decode()] for n, v in scope["headers"]],
                "subprotocols": scope.get("subprotocols") or [],
            }
            await send({"type": "websocket.send", "text": orjson.dumps(hello).decode()})
        elif command[0] == "mute":
            await asyncio.sleep(float(command[1]))
        elif command[0] == "sink":
            sink = True
        elif not sink:
            await send({"type": "websocket.send", "text": text, "bytes": message.get("bytes")})


# --- HTTP: event streams and long polls --------------------------------------------
async def _http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path = scope["path"]
    if path == "/_stats":
        await _json(send, STATS)
    elif path == "/_reset":
        _reset()
        await _json(send, {"ok": True})
    elif m := re.fullmatch(r"/sse/every/(\d+)", path):
        await _events(receive, send, [(10**9, int(m.group(1)))])
    elif m := re.fullmatch(r"/sse/quiet/(\d+)/(\d+)", path):
        n, quiet = int(m.group(1)), int(m.group(2))
        await _events(receive, send, [(n, 50), (1, quiet), (n, 50)])
    elif m := re.fullmatch(r"/sse/heavy/(\d+)", path):
        await _events(receive, send, [(10**9, 0)], pad=int(m.group(1)) * 1024)
    elif path == "/sse/own-cache":
        await _events(receive, send, [(3, 50)], [(b"cache-control", b"private, max-age=5")])
    elif m := re.fullmatch(r"/hang/(\d+)", path):
        await asyncio.sleep(int(m.group(1)) / 1000)
        await _json(send, {"waited_ms": int(m.group(1))})
    else:
        await _json(send, {"error": "not found"}, 404)


async def _json(send: Any, body: object, status: int = 200) -> None:
    content = orjson.dumps(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(content))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


async def _events(
    receive: Any,
    send: Any,
    plan: list[tuple[int, int]],
    extra: list[tuple[bytes, bytes]] = (),  # type: ignore[assignment]
    pad: int = 0,
) -> None:
    """Events per `plan`: (count, pause in ms before each). Each event's data
    is the time it was sent, so a client can tell how long it took."""
    headers = [(b"content-type", b"text/event-stream"), *extra]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    gone = asyncio.ensure_future(_disconnected(receive))
    n = 0
    try:
        for count, pause in plan:
            for _ in range(count):
                await asyncio.wait([gone], timeout=pause / 1000)
                if gone.done():
                    STATS["sse_disconnects"].append(time.time())
                    return
                n += 1
                data = orjson.dumps({"n": n, "sent": time.time(), "pad": "x" * pad})
                await send(
                    {
                        "type": "http.response.body",
                        "body": b"data: %s\n\n" % data,
                        "more_body": True,
                    }
                )
        await send({"type": "http.response.body", "body": b""})
    finally:
        gone.cancel()


async def _disconnected(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--certfile", help="serve TLS (wss://) with this certificate and --keyfile")
    parser.add_argument("--keyfile")
    args = parser.parse_args()
    tls = {"ssl_certfile": args.certfile, "ssl_keyfile": args.keyfile} if args.certfile else {}
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        ws_max_size=64 * 1024 * 1024,
        **tls,
    )


if __name__ == "__main__":
    main()
