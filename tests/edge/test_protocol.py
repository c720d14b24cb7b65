"""The client-side limits on uvicorn's httptools protocol (gateway/edge/protocol.py),
on a real uvicorn server in this process; tests/integration/test_limits.py
drives them through the gateway's own process."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.edge.protocol import guard_protocol
from tests.conftest import free_port


def test_guard_is_installed_once() -> None:
    assert guard_protocol(header_timeout=10.0, max_line=8192, max_headers=65536)
    patched = HttpToolsProtocol.data_received
    assert guard_protocol(header_timeout=10.0, max_line=8192, max_headers=65536)
    assert HttpToolsProtocol.data_received is patched
    assert HttpToolsProtocol._gateway_guarded is True  # type: ignore[attr-defined]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = b"path=%d headers=%d" % (len(scope["raw_path"]), len(scope["headers"]))
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def port() -> AsyncIterator[int]:
    guard_protocol(header_timeout=2.0, max_line=1024, max_headers=4096)
    number = free_port()
    config = uvicorn.Config(app, port=number, http="httptools", log_level="error", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield number
    server.should_exit = True
    await task


async def exchange(port: int, *parts: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for part in parts:
            writer.write(part)
            await writer.drain()
    except ConnectionError:
        pass
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


def problem(answer: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head
    assert b"connection: close" in head
    return int(head.split(b" ")[1]), orjson.loads(body)


async def test_requests_within_the_limits_pass(port: int) -> None:
    target = b"/" + b"a" * 1000
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(30))
    answer = await exchange(
        port, b"GET %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n" % (target, headers)
    )
    assert answer.startswith(b"HTTP/1.1 200") and b"path=1001 headers=32" in answer


@pytest.mark.parametrize("pieces", [1, 64])
async def test_a_long_target_is_414(port: int, pieces: int) -> None:
    target = b"/" + b"a" * 4000
    request = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target
    size = len(request) // pieces + 1
    status, body = problem(
        await exchange(port, *(request[i : i + size] for i in range(0, len(request), size)))
    )
    assert status == 414 and body["status"] == 414 and body["request_id"]


@pytest.mark.parametrize(
    "headers",
    [
        b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(60)),  # many
        b"X-Big: " + b"v" * 10_000 + b"\r\n",  # one big value
        b"X-" + b"n" * 10_000 + b": v\r\n",  # one big name
    ],
)
async def test_a_large_header_block_is_431(port: int, headers: bytes) -> None:
    status, body = problem(
        await exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    )
    assert status == 431 and body["type"].endswith("request-header-fields-too-large")


async def test_an_endless_target_is_cut_off_and_the_answer_still_arrives(port: int) -> None:
    """20 MB of target: refused at the limit, the rest read and dropped (a
    client that writes before it reads still gets the answer, not a reset)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = asyncio.get_running_loop().time()
    writer.write(b"GET /")
    for _ in range(320):
        writer.write(b"a" * 65536)
        await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    assert answer.startswith(b"HTTP/1.1 414")
    assert asyncio.get_running_loop().time() - started < 2  # linear: nothing piles up
    writer.close()


async def test_slow_headers_are_a_408_problem(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n")
        answer = await asyncio.get_running_loop().run_in_executor(None, sock.recv, 4096)
    status, body = problem(answer)
    assert status == 408 and "took too long" in body["detail"]


async def test_a_body_after_the_head_is_not_counted_as_head(port: int) -> None:
    body = b"x" * 100_000  # far more than both limits, after a small head
    answer = await exchange(
        port,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
        % len(body),
        body,
    )
    assert answer.startswith(b"HTTP/1.1 200")
