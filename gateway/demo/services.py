"""Three tiny upstream services (users, orders, billing + catalog) as plain ASGI
apps, so that `make run` has something real to aggregate."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs

import orjson

__all__ = ["billing", "orders", "users"]

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
        status, body = handler(
            scope["method"], scope["path"], parse_qs(scope["query_string"].decode())
        )
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
