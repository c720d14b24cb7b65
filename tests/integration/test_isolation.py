"""No client takes what belongs to everyone (SPEC 3.10, v3), through a real
gateway: long-lived connections have their own limits per upstream and per
client, and a client that reads nothing is cut off and gives back what its
answer held."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import socket
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.integration.conftest import Gateway, GatewayFactory, Stub

ROUTES = """
version: 1
settings:
  max_streams_per_client: 3
upstreams:
  live: {url: "${LIVE}", timeout: 5s, max_connections: 8}   # max_streams: 4, half
  other: {url: "${LIVE}", timeout: 5s, max_connections: 8, max_streams: 50}
  stub: {url: "${STUB}", timeout: 5s}
auth:
  keys:
    type: api_key
    keys: [{id: alice, key: alice-key}, {id: bob, key: bob-key}, {id: carol, key: carol-key}]
routes:
  - name: events
    path: /events/{ms}
    auth: keys
    proxy: {upstream: live, path: "/sse/every/{ms}"}
  - name: poll
    path: /poll/{ms}
    proxy: {upstream: live, path: "/hang/{ms}"}
  - name: heavy-events
    path: /heavy-events
    proxy: {upstream: other, path: "/sse/heavy/64"}
  - name: chat
    path: /chat
    auth: keys
    websocket: {upstream: live, path: /ws/echo/chat}
  - name: big
    path: /big
    timeout: 30s
    backends: [{upstream: stub, path: "/bigjson/6000000", key: big}]
"""


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, live: Stub, stub: Stub) -> Gateway:
    return start_gateway(
        ROUTES, LIVE=live.url, STUB=stub.url, CLIENT_SEND_TIMEOUT="1s", MEMORY_BUDGET="64MiB"
    )


def metric(gw: Gateway, name: str, labels: str = "") -> float:
    text = gw.admin_get("/metrics").text
    found = re.search(rf"^{name}{re.escape(labels)} ([0-9.e+]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


@contextlib.asynccontextmanager
async def event_streams(
    gw: Gateway, count: int, path: str, key: str | None
) -> AsyncIterator[list[httpx.Response]]:
    """`count` event streams held open (their headers read)."""
    headers = {"X-API-Key": key} if key else {}
    async with (
        httpx.AsyncClient(base_url=gw.url, timeout=10, headers=headers) as client,
        contextlib.AsyncExitStack() as stack,
    ):
        opened = []
        for _ in range(count):
            opened.append(await stack.enter_async_context(client.stream("GET", path)))
        yield opened


async def test_a_client_is_held_to_its_streams(gw: Gateway) -> None:
    async with event_streams(gw, 3, "/events/500", "alice-key") as streams:
        assert [s.status_code for s in streams] == [200, 200, 200]
        async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
            fourth = await client.get("/events/500", headers={"X-API-Key": "alice-key"})
            assert fourth.status_code == 503
            assert fourth.headers["content-type"] == "application/problem+json"
            assert fourth.headers["retry-after"] == "5"
            assert fourth.json()["type"].endswith("too-many-streams")
            assert "max_streams_per_client" in fourth.json()["detail"]
            # ... never another client: bob's stream opens
            async with client.stream("GET", "/events/500", headers={"X-API-Key": "bob-key"}) as b:
                assert b.status_code == 200
    assert metric(gw, "gateway_stream_rejections_total", '{reason="client",upstream="live"}') >= 1


async def test_streams_never_take_the_whole_pool(gw: Gateway) -> None:
    """max_connections 8, max_streams 4: four event streams later, plain
    requests to the same upstream still have four connections."""
    async with (
        event_streams(gw, 2, "/events/500", "alice-key") as first,
        event_streams(gw, 2, "/events/500", "bob-key") as second,
    ):
        assert [s.status_code for s in first + second] == [200] * 4
        assert metric(gw, "gateway_upstream_streams", '{upstream="live"}') == 4
        async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
            refused = await client.get("/events/500", headers={"X-API-Key": "carol-key"})
            assert refused.status_code == 503 and "max_streams" in refused.json()["detail"]
            started = time.monotonic()
            polls = await asyncio.gather(*(client.get("/poll/100") for _ in range(8)))
            assert [p.status_code for p in polls] == [200] * 8
            assert time.monotonic() - started < 2  # four connections at a time: two rounds
    await asyncio.sleep(0.2)
    assert metric(gw, "gateway_upstream_streams", '{upstream="live"}') == 0


async def test_websockets_count_as_streams(gw: Gateway, live: Stub) -> None:
    headers = {"X-API-Key": "alice-key"}
    async with contextlib.AsyncExitStack() as stack:
        sockets: list[ClientConnection] = []
        for _ in range(3):
            ws = await stack.enter_async_context(
                connect(gw.url.replace("http", "ws") + "/chat", additional_headers=headers)
            )
            sockets.append(ws)
        with pytest.raises(InvalidStatus) as refused:
            await connect(gw.url.replace("http", "ws") + "/chat", additional_headers=headers)
        assert refused.value.response.status_code == 503
        body = json.loads(refused.value.response.body or b"{}")
        assert body["type"].endswith("too-many-streams")
        await sockets[0].send("still here")
        assert await sockets[0].recv() == "still here"
    await asyncio.sleep(0.2)
    async with connect(gw.url.replace("http", "ws") + "/chat", additional_headers=headers) as ws:
        await ws.send("again")  # the slots were given back as the pairs closed
        assert await ws.recv() == "again"


def test_a_client_that_reads_nothing_is_cut_off(gw: Gateway) -> None:
    """A 6 MB answer to a client that never reads: after CLIENT_SEND_TIMEOUT
    (1 s here) it is cut off and the memory budget it held given back."""
    with socket.create_connection(("127.0.0.1", gw.process.port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\nX-Request-ID: never-reads\r\n\r\n")
        deadline = time.monotonic() + 5
        held = 0.0
        while time.monotonic() < deadline and not held:
            held = metric(gw, "gateway_memory_budget_used_bytes")
            time.sleep(0.05)
        assert held > 6_000_000  # the answer, waiting for the client
        while time.monotonic() < deadline and metric(gw, "gateway_memory_budget_used_bytes"):
            time.sleep(0.1)
        assert metric(gw, "gateway_memory_budget_used_bytes") == 0
        sock.settimeout(5)
        received = 0
        with contextlib.suppress(OSError):
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
        assert received < 1_000_000  # cut, and reset: no megabytes trickle out later
    assert gw.get("/big").status_code == 200  # others are served
    time.sleep(0.3)
    output = gw.process.output()
    lines = [json.loads(x) for x in output.splitlines() if '"request_id":"never-reads"' in x]
    cut, access = lines  # the gateway's line of the cut, then the access log line
    assert cut["level"] == "info" and "answer cut off (send_timeout)" in cut["message"]
    assert access["cut"] == "send_timeout" and access["status"] == 200
    assert "ASGI callable returned without completing response" not in output


async def test_a_stream_to_a_client_that_reads_nothing_gives_its_slot_back(gw: Gateway) -> None:
    before = metric(gw, "gateway_upstream_streams", '{upstream="other"}')
    with socket.create_connection(("127.0.0.1", gw.process.port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /heavy-events HTTP/1.1\r\nHost: x\r\n\r\n")  # 64 KiB events
        await asyncio.sleep(0.5)
        assert metric(gw, "gateway_upstream_streams", '{upstream="other"}') == before + 1
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            if metric(gw, "gateway_upstream_streams", '{upstream="other"}') == before:
                break
            await asyncio.sleep(0.2)
        assert metric(gw, "gateway_upstream_streams", '{upstream="other"}') == before


def websocket_frame(text: str) -> bytes:
    data, mask = text.encode(), os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return bytes([0x81, 0x80 | len(data)]) + mask + masked


async def test_a_websocket_client_that_reads_nothing_is_cut_off(gw: Gateway, live: Stub) -> None:
    """A raw client (a library would read into its own buffers) that asks for
    25 MB and reads none of it: cut off after CLIENT_SEND_TIMEOUT (1 s here),
    its upstream closed and its stream slot given back."""
    live.reset()
    with socket.create_connection(("127.0.0.1", gw.process.port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        key = base64.b64encode(os.urandom(16))
        sock.sendall(
            b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
            % key
            + b"X-API-Key: carol-key\r\n\r\n"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101")
        sock.sendall(websocket_frame("flood 400 65536"))
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline and live.stats()["ws_open"]:
            await asyncio.sleep(0.2)
        assert live.stats()["ws_open"] == 0  # the upstream connection is over
        assert live.stats()["flood_sent"] < 400  # long before the upstream had sent it all
    await asyncio.sleep(0.3)
    assert metric(gw, "gateway_upstream_streams", '{upstream="live"}') == 0
    lines = [json.loads(x) for x in gw.process.output().splitlines() if '"route":"chat"' in x]
    assert lines[-1]["cut"] == "send_timeout" and lines[-1]["websocket"]["closed_by"] == "gateway"
