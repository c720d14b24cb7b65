"""The websocket route kind (gateway/pipeline/wsroute.py) and the relay
(gateway/pipeline/relay.py), against a websockets server in this process:
a plain request is 426; a handshake opens the upstream, accepts the client
with the upstream's subprotocol and the policies' headers, and relays both
ways until one side ends; refusals are the route's errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from gateway.envelope import RouteCall, UpstreamEdits, open_call
from gateway.errors import BackendFailed, TooManyStreams, UpgradeRequired
from gateway.lifecycle import lifecycle
from gateway.pipeline.relay import RESTART
from gateway.pipeline.wsroute import WebSocketRoute
from gateway.routes.model import RouteTable
from gateway.types import Message
from tests.calls import context, envelope_for, http_call, match_of, scope_for
from tests.conftest import free_port, table

SEEN: list[Headers] = []


async def echo(connection: ServerConnection) -> None:
    SEEN.append(connection.request.headers if connection.request else Headers())
    async for message in connection:
        if message == "close 4001":
            await connection.close(4001, "as asked")
            return
        await connection.send(message)


def refuse_some(connection: ServerConnection, request: Request) -> Response | None:
    if request.path == "/forbidden":
        return connection.respond(403, "no")
    return None


@pytest.fixture
async def upstream() -> AsyncIterator[int]:
    port = free_port()
    server: Server = await serve(
        echo,
        "127.0.0.1",
        port,
        subprotocols=[Subprotocol("chat.v2"), Subprotocol("chat.v1")],
        process_request=refuse_some,
    )
    try:
        yield port
    finally:
        server.close()
        await server.wait_closed()


def routes(port: int, extra: str = "") -> RouteTable:
    return table(
        f"""
        version: 1
        upstreams: {{u: {{url: "http://127.0.0.1:{port}", max_streams: 1}}}}
        routes:
          - {{name: chat, path: /chat, websocket: {{upstream: u, path: /ws, subprotocols: [chat.v1], idle_timeout: 300ms, max_message_size: 16}}}}
          - {{name: denied, path: /denied, websocket: {{upstream: u, path: /forbidden}}}}
        {extra}
        """
    )


class Client:
    """The ASGI side of a handshake: what it sends, what it is sent."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[Message] = asyncio.Queue()
        self.sent: list[Message] = []
        self.closed = asyncio.Event()

    async def receive(self) -> Message:
        return await self.incoming.get()

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        if message["type"] == "websocket.close":
            self.closed.set()

    def say(self, text: str) -> None:
        self.incoming.put_nowait({"type": "websocket.receive", "text": text})

    def leave(self, code: int = 1000) -> None:
        self.incoming.put_nowait({"type": "websocket.disconnect", "code": code})

    async def heard(self, count: int) -> list[str]:
        for _ in range(100):
            texts = [m["text"] for m in self.sent if m["type"] == "websocket.send"]
            if len(texts) >= count:
                return texts
            await asyncio.sleep(0.01)
        return texts


def handshake(built: RouteTable, name: str, client: Client, **headers: str) -> RouteCall:
    route = next(r for r in built.routes if r.name == name)
    found = match_of(route)
    scope = scope_for("GET", route.path, headers, kind="websocket")
    scope["subprotocols"] = ["chat.v2", "chat.v1"]
    return open_call(envelope_for(found), found, scope, receive=client.receive, send=client.send)


async def test_a_plain_request_is_told_to_upgrade(upstream: int) -> None:
    built = routes(upstream)
    kind = WebSocketRoute(built.routes[0], context(built))
    with pytest.raises(UpgradeRequired):
        await kind(http_call(built.routes[0]))


async def test_a_pair_is_relayed_both_ways_until_the_client_leaves(upstream: int) -> None:
    built = routes(upstream)
    kind = WebSocketRoute(built.routes[0], context(built))
    client = Client()
    call = handshake(built, "chat", client, Cookie="c", Authorization="Bearer t")
    call.answer_headers.append(("RateLimit-Limit", "5"))
    call.envelope.hooked = None
    relaying = asyncio.ensure_future(kind(call))
    client.say("hello")
    assert await client.heard(1) == ["hello"]
    client.leave(1000)
    await asyncio.wait_for(relaying, 5)
    accept = client.sent[0]
    assert accept["type"] == "websocket.accept" and accept["subprotocol"] == "chat.v1"
    assert (b"ratelimit-limit", b"5") in accept["headers"]
    assert (b"x-request-id", b"rid-1") in accept["headers"]
    log = call.envelope.log
    assert log.websocket is not None and (log.websocket.to_upstream, log.websocket.to_client) == (
        1,
        1,
    )
    assert log.websocket.closed_by == "client" and log.websocket.close_code == 1000
    assert [(b.name, b.status, b.outcome) for b in log.backends] == [("u", 101, "ok")]
    sent = SEEN[-1]
    assert "cookie" not in sent and sent["x-request-id"] == "rid-1"
    assert sent["sec-websocket-protocol"] == "chat.v1"  # the route's filter on the offers


async def test_request_hooks_edits_reach_the_upstream_handshake(upstream: int) -> None:
    built = routes(upstream)
    kind = WebSocketRoute(built.routes[0], context(built))
    client = Client()
    call = handshake(built, "chat", client)
    from gateway.envelope import Hooked

    call.envelope.hooked = Hooked(lambda: None)  # type: ignore[arg-type, return-value]
    call.envelope.hooked.edits = UpstreamEdits(((b"x-tenant", b"acme"),), frozenset())
    relaying = asyncio.ensure_future(kind(call))
    client.leave()
    await asyncio.wait_for(relaying, 5)
    assert SEEN[-1]["x-tenant"] == "acme"


async def test_the_upstream_closing_closes_the_client_with_its_code(upstream: int) -> None:
    built = routes(upstream)
    client = Client()
    call = handshake(built, "chat", client)
    relaying = asyncio.ensure_future(WebSocketRoute(built.routes[0], context(built))(call))
    client.say("close 4001")
    await asyncio.wait_for(client.closed.wait(), 5)
    client.leave(4001)
    await asyncio.wait_for(relaying, 5)
    assert client.sent[-1] == {"type": "websocket.close", "code": 4001, "reason": "as asked"}
    assert call.envelope.log.websocket is not None
    assert call.envelope.log.websocket.closed_by == "upstream"


async def test_silence_past_idle_timeout_closes_both_sides(upstream: int) -> None:
    built = routes(upstream)
    client = Client()
    call = handshake(built, "chat", client)
    relaying = asyncio.ensure_future(WebSocketRoute(built.routes[0], context(built))(call))
    await asyncio.wait_for(client.closed.wait(), 5)  # 300 ms of silence
    client.leave(1001)
    await asyncio.wait_for(relaying, 5)
    assert client.sent[-1]["code"] == 1001
    assert call.envelope.log.websocket is not None
    assert call.envelope.log.websocket.closed_by == "gateway"


async def test_a_message_over_the_limit_closes_its_sender_1009(upstream: int) -> None:
    built = routes(upstream)
    client = Client()
    call = handshake(built, "chat", client)
    relaying = asyncio.ensure_future(WebSocketRoute(built.routes[0], context(built))(call))
    client.say("x" * 17)  # max_message_size: 16
    await asyncio.wait_for(client.closed.wait(), 5)
    client.leave(1009)
    await asyncio.wait_for(relaying, 5)
    assert client.sent[-1]["code"] == 1009


async def test_draining_tells_the_client_to_come_back_1012(upstream: int) -> None:
    built = routes(upstream)
    client = Client()
    call = handshake(built, "chat", client)
    relaying = asyncio.ensure_future(WebSocketRoute(built.routes[0], context(built))(call))
    client.say("hello")
    await client.heard(1)
    for end in list(lifecycle.open_ended):
        end()
    await asyncio.wait_for(client.closed.wait(), 5)
    client.leave(RESTART)
    await asyncio.wait_for(relaying, 5)
    assert client.sent[-1]["code"] == RESTART
    lifecycle.draining = False


async def test_an_upstream_refusal_is_the_routes_error_before_any_accept(upstream: int) -> None:
    built = routes(upstream)
    client = Client()
    with pytest.raises(BackendFailed) as refused:
        await WebSocketRoute(built.routes[1], context(built))(handshake(built, "denied", client))
    assert refused.value.status == 403 and client.sent == []


async def test_an_unreachable_upstream_is_502(dead_port: int) -> None:
    built = routes(dead_port)
    client = Client()
    with pytest.raises(BackendFailed) as failed:
        await WebSocketRoute(built.routes[0], context(built))(handshake(built, "chat", client))
    assert failed.value.status == 502


async def test_streams_used_up_are_refused_before_the_upstream_is_asked(upstream: int) -> None:
    built = routes(upstream)
    built_context = context(built)
    kind = WebSocketRoute(built.routes[0], built_context)
    first = Client()
    relaying = asyncio.ensure_future(kind(handshake(built, "chat", first)))
    first.say("hello")
    await first.heard(1)
    before = len(SEEN)
    with pytest.raises(TooManyStreams):  # max_streams: 1
        await kind(handshake(built, "chat", Client()))
    assert len(SEEN) == before
    first.leave()
    await asyncio.wait_for(relaying, 5)


def _unused(*_: Any) -> None:
    return None
