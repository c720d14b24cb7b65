"""The WebSocket entry (gateway/edge/handshake.py): the edge's part of a
handshake (envelope, Host check, which route), then the route's own stack;
every refusal an HTTP answer with a problem+json body."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from gateway import serving
from gateway.assembly import Gateway, build_gateway
from gateway.edge.handshake import WebSocketEntry
from gateway.envelope import RouteCall
from gateway.observe.accesslog import AccessLog
from gateway.runtime import Runtime
from gateway.stack import Answer
from gateway.types import Message
from tests.conftest import table

ROUTES = table(
    """
    version: 1
    upstreams: {u: {url: "http://127.0.0.1:1"}}
    auth: {keys: {type: api_key, keys: [{id: a, key: k}]}}
    routes:
      - {name: chat, path: /chat, websocket: {upstream: u, path: /ws}}
      - {name: guarded, path: /guarded, auth: keys, websocket: {upstream: u, path: /ws}}
      - {name: plain, path: /plain, backends: [{upstream: u, path: /x}]}
    """
)
DENIAL: dict[str, Any] = {"websocket.http.response": {}}


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    previous = serving.current()
    built = build_gateway(ROUTES, Runtime(redis_url="", failure_mode="open"))
    serving.install(built)
    yield built
    serving.install(previous)


class Client:
    """The ASGI side of one handshake."""

    def __init__(self, path: str, *, extensions: dict[str, Any] | None = None, **headers: str):
        self.scope: dict[str, Any] = {
            "type": "websocket",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [
                (k.lower().replace("_", "-").encode(), v.encode()) for k, v in headers.items()
            ],
            "client": ("192.0.2.1", 5000),
            "server": ("127.0.0.1", 8000),
            "scheme": "ws",
            "extensions": DENIAL if extensions is None else extensions,
        }
        self.incoming: list[Message] = [{"type": "websocket.connect"}]
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        return self.incoming.pop(0) if self.incoming else {"type": "websocket.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    async def run(self, entry: WebSocketEntry) -> None:
        await entry.handle(self.scope, self.receive, self.send)

    def refusal(self) -> tuple[int, dict[str, Any]]:
        start, body = self.sent
        assert start["type"] == "websocket.http.response.start"
        return int(start["status"]), orjson.loads(body["body"])


def entry() -> tuple[WebSocketEntry, io.BytesIO]:
    out = io.BytesIO()
    return WebSocketEntry(AccessLog("json", out)), out


async def test_without_routes_the_handshake_is_refused_503() -> None:
    previous = serving.current()
    serving.install(None)
    try:
        client = Client("/chat")
        await client.run(entry()[0])
    finally:
        serving.install(previous)
    status, problem = client.refusal()
    assert status == 503 and problem["detail"] == "no routes are loaded"


@pytest.mark.parametrize(
    ("path", "status", "detail"),
    [
        ("/nowhere", 404, "no route matches this path"),
        ("/plain", 400, "route 'plain' does not accept WebSocket connections"),
    ],
)
async def test_a_handshake_no_websocket_route_takes_is_refused(
    gateway: Gateway, path: str, status: int, detail: str
) -> None:
    client = Client(path)
    await client.run(entry()[0])
    assert client.refusal()[0] == status and client.refusal()[1]["detail"] == detail


async def test_a_host_not_allowed_is_refused(gateway: Gateway, settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["gw.example"]
    client = Client("/chat", Host="evil.example")
    await client.run(entry()[0])
    assert client.refusal()[1]["detail"] == "host not allowed"


async def test_the_routes_stack_refuses_with_its_own_status_and_headers(
    gateway: Gateway,
) -> None:
    client = Client("/guarded")
    made, log = entry()
    await client.run(made)
    status, problem = client.refusal()
    assert status == 401 and problem["route"] == "guarded"
    headers = dict(client.sent[0]["headers"])
    assert headers[b"www-authenticate"].startswith(b"ApiKey")
    made.access_log.flush()
    line = orjson.loads(log.getvalue())
    assert (line["route"], line["status"], line["method"]) == ("guarded", 401, "GET")


async def test_without_the_denial_extension_a_refusal_is_a_close(gateway: Gateway) -> None:
    client = Client("/guarded", extensions={})
    await client.run(entry()[0])
    assert client.sent == [{"type": "websocket.close", "code": 1008}]


async def test_a_client_gone_before_the_handshake_gets_nothing(gateway: Gateway) -> None:
    client = Client("/chat")
    client.incoming = [{"type": "websocket.disconnect"}]
    await client.run(entry()[0])
    assert client.sent == []


async def test_an_admitted_handshake_is_handed_to_the_routes_stack(gateway: Gateway) -> None:
    calls: list[RouteCall] = []

    async def relay(call: RouteCall) -> Answer:
        calls.append(call)
        return None

    gateway.handlers["chat"] = relay  # type: ignore[index]
    client = Client("/chat")
    await client.run(entry()[0])
    (call,) = calls
    assert call.request is None and call.send is not None and call.route.name == "chat"
    assert client.sent == []  # the relay answers; nothing of the entry's own
