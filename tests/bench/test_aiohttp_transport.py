"""The aiohttp transport `make bench` compares with, against real sockets (bench/transports/aiohttp_pool.py)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from bench.transports.aiohttp_pool import AiohttpTransport
from tests.rawserver import RawServer


async def read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = AiohttpTransport(max_connections=4, keepalive_expiry=5)
    async with httpx.AsyncClient(transport=transport) as client:
        yield client


async def test_sends_the_url_byte_for_byte(client: httpx.AsyncClient) -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Encoding: gzip\r\n\r\nok")
        await writer.drain()
        writer.close()

    async with RawServer(handler) as port:
        url = httpx.URL(
            scheme="http", host="127.0.0.1", port=port, raw_path=b"/a%2Fb/%7E?q=a%2Fb%20c&x=%26"
        )
        response = await client.send(httpx.Request("GET", url, headers={"X-One": "1"}), stream=True)
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
        await response.aclose()
    assert raw == b"ok"  # the transport never decompresses
    request_line, *headers = seen[0].decode().split("\r\n")
    assert request_line == "GET /a%2Fb/%7E?q=a%2Fb%20c&x=%26 HTTP/1.1"
    names = {h.split(":")[0].lower() for h in headers if h}
    assert "user-agent" not in names
    assert "accept-encoding" not in names
    assert "cookie" not in names


async def test_connection_refused_is_a_connect_error(client: httpx.AsyncClient) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(httpx.ConnectError):
        await client.get(f"http://127.0.0.1:{port}/")


async def test_server_hanging_up_is_a_network_error_not_a_timeout(
    client: httpx.AsyncClient,
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.close()

    async with RawServer(handler) as port:
        with pytest.raises(httpx.NetworkError):
            await client.get(f"http://127.0.0.1:{port}/")


async def test_slow_server_is_a_read_timeout(client: httpx.AsyncClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(2)

    async with RawServer(handler) as port:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"http://127.0.0.1:{port}/", timeout=0.2)


async def test_streamed_request_body(client: httpx.AsyncClient) -> None:
    received = bytearray()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_request(reader)
        length = int(
            next(
                line.split(b":")[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        received.extend(await reader.readexactly(length))
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        writer.close()

    async def body() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    async with RawServer(handler) as port:
        response = await client.post(
            f"http://127.0.0.1:{port}/", content=body(), headers={"Content-Length": "10000"}
        )
    assert response.status_code == 204
    assert bytes(received) == b"x" * 10000
