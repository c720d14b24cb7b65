"""Tiny upstream services as plain ASGI apps, so that `make run` has
something real to aggregate, stream and relay: users, orders, billing (+
catalog), each answering after `?delay=<ms>` when asked (the progressive
route shows backends finishing one by one), and `live`: a WebSocket echo on
/echo and a Server-Sent Events feed on /ticks (one event a second)."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any
from urllib.parse import parse_qs

import orjson

__all__ = ["billing", "live", "orders", "users"]

MAX_DELAY = 5.0  # seconds

type Scope = dict[str, Any]


async def _send_json(send: Any, status: int, body: object) -> None:
    content = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})


def _app(handler: Any) -> Any:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        query = parse_qs(scope["query_string"].decode())
        if delay := (query.pop("delay", None) or [""])[0]:
            await asyncio.sleep(min(MAX_DELAY, int(delay) / 1000 if delay.isdigit() else 0))
        status, body = handler(scope["method"], scope["path"], query)
        await _send_json(send, status, body)

    return app


_NAMES = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov"]


def _users(method: str, path: str, query: dict[str, list[str]]) -> tuple[int, object]:
    if m := re.fullmatch(r"/users/(\d+)", path):
        uid = int(m.group(1))
        if not 1 <= uid <= len(_NAMES):
            return 404, {"error": "no such user"}
        name = _NAMES[uid - 1]
        return 200, {
            "id": uid,
            "name": name,
            "email": name.split()[0].lower() + "@example.com",
            "account_id": f"acc-{uid:04d}",
        }
    return 404, {"error": "not found"}


def _orders(method: str, path: str, query: dict[str, list[str]]) -> tuple[int, object]:
    if path == "/orders":
        user = int((query.get("user") or ["1"])[0] or 1)
        limit = int((query.get("limit") or ["10"])[0] or 10)
        items = [
            {
                "id": f"ord-{user}-{n}",
                "total": round(19.5 * n + user, 2),
                "currency": "EUR",
                "internal_note": "x",
            }
            for n in range(1, 4)
        ][:limit]
        return 200, {"data": items, "count": len(items)}
    return 404, {"error": "not found"}


def _billing(method: str, path: str, query: dict[str, list[str]]) -> tuple[int, object]:
    if m := re.fullmatch(r"/accounts/(acc-\d+)", path):
        return 200, {"account": m.group(1), "balance": 42.0, "currency": "EUR", "plan": "pro"}
    if m := re.fullmatch(r"/v2/(.+)", path):
        return 200, {"item": m.group(1), "method": method, "in_stock": True}
    return 404, {"error": "not found"}


users = _app(_users)
orders = _app(_orders)
billing = _app(_billing)


async def live(scope: Scope, receive: Any, send: Any) -> None:
    """WebSocket /echo: every message back as it came ("close 4000 bye" makes
    it close with that code and reason); GET /ticks: an event stream."""
    if scope["type"] == "websocket" and scope["path"] == "/echo":
        await _echo(receive, send)
    elif scope["type"] == "http" and scope["path"] == "/ticks":
        await _ticks(receive, send)
    elif scope["type"] == "http":
        await _send_json(send, 404, {"error": "not found"})
    elif scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})


async def _echo(receive: Any, send: Any) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while (message := await receive())["type"] == "websocket.receive":
        text = message.get("text")
        if text is not None and (m := re.fullmatch(r"close (\d{4}) ?(.*)", text)):
            await send({"type": "websocket.close", "code": int(m.group(1)), "reason": m.group(2)})
            return
        await send({"type": "websocket.send", "text": text, "bytes": message.get("bytes")})


async def _ticks(receive: Any, send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream")],
        }
    )
    gone = asyncio.ensure_future(_disconnected(receive))
    n = 0
    while not gone.done():
        n += 1
        data = orjson.dumps({"tick": n, "time": time.time()})
        event = b"id: %d\nevent: tick\ndata: %s\n\n" % (n, data)
        await send({"type": "http.response.body", "body": event, "more_body": True})
        await asyncio.wait([gone], timeout=1)


async def _disconnected(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
