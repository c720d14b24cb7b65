"""WebSocket routes through the real gateway process (SPEC 3.11): a real
uvicorn WebSocket upstream (tests/integration/livestub.py) and real clients
(the `websockets` library)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.integration.conftest import Gateway, GatewayFactory, Stub

ROUTES = """
version: 1
upstreams:
  live: {url: "${LIVE}", timeout: 1s}
  slowup: {url: "${LIVE}", timeout: 300ms}
  down: {url: "http://127.0.0.1:${DOWN_PORT}", timeout: 1s}
  breaker: {url: "http://127.0.0.1:${DOWN_PORT}", timeout: 1s, circuit_breaker: {failures: 1, cooldown: 1m}}
auth:
  keys:
    type: api_key
    query_param: access_token
    identity_header: X-Client-Id
    keys:
      - {id: alice, key: alice-key, scopes: [chat]}
      - {id: bob, key: bob-key}
routes:
  - name: chat
    path: /chat/{room}
    auth: keys
    scopes: [chat]
    websocket:
      upstream: live
      path: /ws/echo/{room}
      subprotocols: [chat.v1, chat.v2]
      max_message_size: 64KiB
      idle_timeout: 1500ms
  - name: open
    path: /open/{rest:path}
    websocket: {upstream: live, path: "/ws/{rest}", max_message_size: 1MiB}
  - name: limited
    path: /limited
    rate_limit: {limit: 2, window: 1h}
    websocket: {upstream: live, path: /ws/echo/limited}
  - name: browser
    path: /browser
    cors: {allow_origins: ["https://app.example"]}
    websocket: {upstream: live, path: /ws/echo/browser}
  - name: down
    path: /down
    websocket: {upstream: down, path: /ws}
  - name: broken
    path: /broken
    websocket: {upstream: breaker, path: /ws}
  - name: slow
    path: /slow
    websocket: {upstream: slowup, path: /ws/slow/1000}
"""


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, live: Stub, dead_port: int) -> Gateway:
    return start_gateway(ROUTES, LIVE=live.url, DOWN_PORT=str(dead_port))


def ws_url(gw: Gateway, path: str) -> str:
    return "ws://" + gw.url.removeprefix("http://") + path


async def refused(gw: Gateway, path: str, **options: object) -> httpx.Response:
    """The HTTP answer a refused handshake got (the test fails if it was accepted)."""
    with pytest.raises(InvalidStatus) as caught:
        async with connect(ws_url(gw, path), **options):  # type: ignore[arg-type]
            pass
    answer = caught.value.response
    return httpx.Response(
        answer.status_code, headers=list(answer.headers.raw_items()), content=bytes(answer.body)
    )


async def closed(ws: ClientConnection, timeout: float = 5) -> tuple[int | None, str]:
    """Read until the gateway closes: the close code and reason it sent."""
    with pytest.raises(ConnectionClosed) as caught:
        await asyncio.wait_for(_read_all(ws), timeout)
    rcvd = caught.value.rcvd
    return (rcvd.code, rcvd.reason) if rcvd else (None, "")


async def _read_all(ws: ClientConnection) -> None:
    while True:
        await ws.recv()


async def upstream_closes(live: Stub, count: int = 1, timeout: float = 5) -> list[list[object]]:
    """The close codes the upstream received, once there are `count` of them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        closes = live.stats()["ws_closes"]
        if len(closes) >= count:
            return closes
        await asyncio.sleep(0.05)
    raise AssertionError(f"the upstream saw {live.stats()['ws_closes']}, expected {count}")


# --- before the upgrade ------------------------------------------------------------------
def test_a_plain_get_is_426_with_upgrade(gw: Gateway) -> None:
    response = gw.get("/open/echo/x")
    assert response.status_code == 426
    assert response.headers["upgrade"] == "websocket"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 426


async def test_refusals_come_before_the_upstream_is_contacted(gw: Gateway, live: Stub) -> None:
    live.reset()
    missing = await refused(gw, "/chat/r1")
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.headers["www-authenticate"] == 'ApiKey header="X-API-Key"'
    assert missing.json()["route"] == "chat"
    assert missing.json()["request_id"] == missing.headers["x-request-id"]
    wrong = await refused(gw, "/chat/r1?access_token=nope")
    assert wrong.status_code == 401
    no_scope = await refused(gw, "/chat/r1", additional_headers={"X-API-Key": "bob-key"})
    assert no_scope.status_code == 403 and "chat" in no_scope.json()["detail"]
    origin = await refused(gw, "/browser", origin="https://evil.example")
    assert origin.status_code == 403 and "evil" in origin.json()["detail"]
    assert live.stats()["ws_opened"] == 0


async def test_cors_routes_accept_allowed_origins_and_clients_without_one(gw: Gateway) -> None:
    async with connect(ws_url(gw, "/browser"), origin="https://app.example") as ws:  # type: ignore[arg-type]
        await ws.send("ok")
        assert await ws.recv() == "ok"
    async with connect(ws_url(gw, "/browser")) as ws:  # no Origin: not a browser
        await ws.send("ok")
        assert await ws.recv() == "ok"


async def test_one_rate_limit_token_per_handshake(gw: Gateway, live: Stub) -> None:
    live.reset()
    for _ in range(2):
        async with connect(ws_url(gw, "/limited")) as ws:
            assert ws.response is not None
            assert ws.response.headers["ratelimit-limit"] == "2"
    limited = await refused(gw, "/limited")
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["ratelimit-remaining"] == "0"
    assert live.stats()["ws_opened"] == 2


async def test_the_upstream_handshake_follows_the_proxy_header_rules(gw: Gateway) -> None:
    headers = {
        "X-Custom": "kept",
        "Cookie": "session=secret",
        "X-Client-Id": "forged",
        "X-Request-ID": "rid-ws-1",
        "X-Forwarded-For": "203.0.113.9",
        "X_Client_Id": "forged",  # folded into x-client-id by some upstreams
        "X_Forwarded_For": "203.0.113.9",
        "Transfer_Encoding": "chunked",
    }
    async with connect(
        ws_url(gw, "/chat/room1?access_token=alice-key&x=1"),
        additional_headers=headers,
        subprotocols=["bogus", "chat.v2", "chat.v1"],  # type: ignore[list-item]
    ) as ws:
        assert ws.subprotocol == "chat.v2"  # the upstream's choice among what passed the filter
        await ws.send("hello")
        hello = json.loads(await ws.recv())
    seen: dict[str, list[str]] = {}
    for name, value in hello["headers"]:
        seen.setdefault(name, []).append(value)
    assert hello["path"] == "/ws/echo/room1"
    assert hello["query"] == "x=1"  # the credential never reaches the upstream
    assert hello["subprotocols"] == ["chat.v2", "chat.v1"]
    assert seen["x-custom"] == ["kept"]
    assert seen["x-client-id"] == ["alice"]  # set by the gateway; the client's copy dropped
    assert seen["x-request-id"] == ["rid-ws-1"]
    assert seen["x-forwarded-for"] == ["127.0.0.1"]  # an untrusted client's own is dropped
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["x-forwarded-host"] == [gw.url.removeprefix("http://")]
    assert "cookie" not in seen
    assert not [name for name in seen if "_" in name]  # dropped before anything read them


async def test_a_header_credential_wins_over_the_query_and_is_not_forwarded(gw: Gateway) -> None:
    both = await refused(
        gw, "/chat/r?access_token=alice-key", additional_headers={"X-API-Key": "bob-key"}
    )
    assert both.status_code == 403  # bob's header decided, not alice's query
    async with connect(ws_url(gw, "/chat/r"), additional_headers={"X-API-Key": "alice-key"}) as ws:
        await ws.send("hello")
        names = {name for name, _ in json.loads(await ws.recv())["headers"]}
    assert "x-api-key" not in names


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/open/refuse/403", 403),  # the upstream's 4xx
        ("/open/refuse/500", 502),
        ("/down", 502),  # cannot be reached
        ("/slow", 504),  # the upstream's timeout bounds the handshake
    ],
)
async def test_upstream_refusals_are_http_answers(gw: Gateway, path: str, status: int) -> None:
    answer = await refused(gw, path)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["status"] == status


async def test_an_open_circuit_is_503(gw: Gateway) -> None:
    assert (await refused(gw, "/broken")).status_code == 502  # the failure that opens it
    second = await refused(gw, "/broken")
    assert second.status_code == 503
    assert "circuit" in second.json()["detail"]


# --- messages ---------------------------------------------------------------------
async def test_text_and_binary_messages_pass_unchanged_and_in_order(gw: Gateway) -> None:
    messages: list[str | bytes] = [
        f"text {n} é" if n % 2 else bytes([n % 256]) * (n * 7) for n in range(60)
    ]
    async with connect(ws_url(gw, "/open/echo/order")) as ws:
        for message in messages:
            await ws.send(message)
        received = [await ws.recv() for _ in messages]
    assert received == messages


async def test_a_connection_outlives_the_client_deadlines(
    start_gateway: GatewayFactory, live: Stub, dead_port: int
) -> None:
    """The deadline for a request's head (CLIENT_HEADER_TIMEOUT) and a body's
    grace end with the handshake: they once fired into the open WebSocket,
    writing an HTTP 408 into its stream after 10 s."""
    gateway = start_gateway(
        ROUTES,
        LIVE=live.url,
        DOWN_PORT=str(dead_port),
        CLIENT_HEADER_TIMEOUT="500ms",
        CLIENT_BODY_TIMEOUT="500ms",
    )
    async with connect(ws_url(gateway, "/open/echo/long")) as ws:
        for n in range(3):
            await asyncio.sleep(0.6)
            await ws.send(f"still here {n}")
            assert await asyncio.wait_for(ws.recv(), 2) == f"still here {n}"
    gateway.process.stop()


async def test_close_codes_pass_both_ways(gw: Gateway, live: Stub) -> None:
    live.reset()
    async with connect(ws_url(gw, "/open/echo/c1")) as ws:
        await ws.close(4001, "bye")
    assert (await upstream_closes(live))[-1] == [4001, "bye"]
    async with connect(ws_url(gw, "/open/echo/c2")) as ws:
        await ws.send("close 4002 see you later")
        assert await closed(ws) == (4002, "see you later")


async def test_an_upstream_failing_closes_the_client_with_1011(gw: Gateway) -> None:
    async with connect(ws_url(gw, "/open/echo/drop")) as ws:
        await ws.send("drop")
        code, _ = await closed(ws)
    assert code == 1011


async def test_a_client_leaving_closes_the_upstream_with_1001(gw: Gateway, live: Stub) -> None:
    live.reset()
    ws = await connect(ws_url(gw, "/open/echo/gone"))
    await ws.send("x")
    await ws.recv()
    ws.transport.abort()  # no close frame
    assert (await upstream_closes(live))[-1][0] == 1001


async def test_oversized_messages_close_the_sender_1009_and_the_other_1001(
    gw: Gateway, live: Stub
) -> None:
    live.reset()
    async with connect(ws_url(gw, "/chat/big?access_token=alice-key")) as ws:
        await ws.send("x" * 1024)  # under the route's 64 KiB
        assert await ws.recv() == "x" * 1024
        await ws.send(b"x" * (65 * 1024))
        code, _ = await closed(ws)
    assert code == 1009
    assert (await upstream_closes(live))[-1][0] == 1001
    live.reset()
    async with connect(ws_url(gw, "/chat/big?access_token=alice-key")) as ws:
        await ws.send(f"big {65 * 1024}")  # the upstream's message is over the limit
        code, _ = await closed(ws)
    assert code == 1001
    assert (await upstream_closes(live))[-1][0] == 1009  # refused by the gateway's client


async def test_no_message_for_idle_timeout_closes_both_with_1001(gw: Gateway, live: Stub) -> None:
    live.reset()
    started = time.monotonic()
    async with connect(ws_url(gw, "/chat/quiet?access_token=alice-key")) as ws:
        await ws.send("keep")  # activity moves the deadline
        await ws.recv()
        code, reason = await closed(ws, timeout=5)
    assert code == 1001 and reason == "idle"
    assert 1.4 <= time.monotonic() - started < 3.5
    assert (await upstream_closes(live))[-1][0] == 1001


# --- backpressure -----------------------------------------------------------------
# Loopback sockets buffer tens of MB in the kernel (tcp_rmem autotuning), none of
# it the gateway's memory: the clients here keep their own socket buffers small,
# and the volumes are large enough that the kernel cannot hold them all. No
# compression: the repeated bytes would shrink to nothing on the client's side.
def small_socket(gw: Gateway) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    sock.connect(("127.0.0.1", gw.process.port))
    sock.setblocking(False)
    return sock


async def test_a_client_that_stops_reading_pauses_the_upstream(gw: Gateway, live: Stub) -> None:
    """150 MB offered by the upstream to a client that reads nothing for 2 s:
    the upstream is paused (its sends wait) and the gateway's memory stays
    within a few maximal messages; then everything arrives, in order."""
    live.reset()
    count, size = 600, 256 * 1024
    url = ws_url(gw, "/open/echo/bp")
    async with connect(
        url, sock=small_socket(gw), max_size=2**21, max_queue=1, compression=None
    ) as ws:
        await ws.send(f"flood {count} {size}")
        await asyncio.sleep(0.5)
        before = gw.process.status("VmRSS")
        await asyncio.sleep(2)
        grown = gw.process.status("VmRSS") - before
        stalled = live.stats()["flood_sent"]
        numbers = [int.from_bytes(_binary(await ws.recv())[:4], "big") for _ in range(count)]
    assert grown < 8 * 1024, f"the gateway grew by {grown} kB while the client did not read"
    assert stalled < count // 2, f"the upstream sent {stalled} of {count} to a client not reading"
    assert numbers == list(range(count))


async def test_an_upstream_that_stops_reading_pauses_the_client(gw: Gateway, live: Stub) -> None:
    live.reset()
    count, size = 600, 256 * 1024
    url = ws_url(gw, "/open/echo/bp2")
    async with connect(url, sock=small_socket(gw), write_limit=64 * 1024, compression=None) as ws:
        await ws.send("sink")
        await ws.send("mute 2")
        await asyncio.sleep(0.2)
        before = gw.process.status("VmRSS")
        sending = asyncio.create_task(_send_many(ws, count, size))
        await asyncio.sleep(1.5)
        grown = gw.process.status("VmRSS") - before
        assert not sending.done(), "the client could send 150 MB to a muted upstream"
        await asyncio.wait_for(sending, 60)
        deadline = time.monotonic() + 30
        while live.stats()["received"] < count + 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    assert grown < 8 * 1024, f"the gateway grew by {grown} kB while the upstream did not read"
    assert live.stats()["received"] == count + 2


async def _send_many(ws: ClientConnection, count: int, size: int) -> None:
    for n in range(count):
        await ws.send(n.to_bytes(4, "big") + b"s" * (size - 4))


# --- what operators see -----------------------------------------------------------------
def metric(gw: Gateway, name: str, labels: str) -> float:
    found = re.search(rf"^{name}\{{{labels}\}} (\S+)$", gw.admin_get("/metrics").text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_metrics_and_one_access_log_line_per_connection(gw: Gateway) -> None:
    gauge = "gateway_websocket_connections"
    messages = "gateway_websocket_messages_total"
    to_upstream = 'direction="client_to_upstream",route="open"'
    open_before = metric(gw, gauge, 'route="open"')
    sent_before = metric(gw, messages, to_upstream)
    url = ws_url(gw, "/open/echo/metrics")
    async with connect(url, additional_headers={"X-Request-ID": "ws-log-1"}) as ws:
        for n in range(3):
            await ws.send(f"m{n}")
            await ws.recv()
        await ws.send("big 10")
        await ws.recv()
        assert metric(gw, gauge, 'route="open"') == open_before + 1
        await ws.close(4005, "done")
    await asyncio.sleep(0.3)
    assert metric(gw, gauge, 'route="open"') == open_before
    assert metric(gw, messages, to_upstream) == sent_before + 4
    lines = [json.loads(line) for line in gw.process.output().splitlines() if '"ws-log-1"' in line]
    assert len(lines) == 1
    line = lines[0]
    assert line["status"] == 101 and line["route"] == "open" and line["duration_ms"] > 0
    assert line["websocket"] == {
        "from_client": 4,
        "from_upstream": 4,
        "close_code": 4005,
        "closed_by": "client",
    }


def _binary(message: str | bytes) -> bytes:
    assert isinstance(message, bytes)
    return message
