"""The HTTP/1.1 client (gateway/upstream/h1) against raw sockets: every framing, the
pool's promises, and every failure mapped to the right httpx exception."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.upstream.h1 import H1Transport
from gateway.upstream.h1.connection import HIGH_WATER
from gateway.upstream.h1.pool import SETTLE_SECONDS
from tests.rawserver import RawServer, read_request

type Reply = bytes


def replying(*replies: Reply, keep_open: bool = True):  # type: ignore[no-untyped-def]
    """A handler answering each request on a connection with the next reply."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for reply in replies:
            await read_request(reader)
            writer.write(reply)
            await writer.drain()
        if not keep_open:
            writer.close()
        else:
            await reader.read()  # until the client closes

    return handler


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=H1Transport(max_connections=4, keepalive_expiry=30)
    ) as client:
        yield client


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def settle() -> None:
    """A released connection serves again only after SETTLE_SECONDS."""
    await asyncio.sleep(SETTLE_SECONDS * 3)


async def test_content_length_and_keep_alive(client: httpx.AsyncClient) -> None:
    server = RawServer(replying(OK, OK, OK))
    async with server as port:
        for _ in range(3):
            response = await client.get(f"http://127.0.0.1:{port}/")
            assert (response.status_code, response.content) == (200, b"ok")
            await settle()
    assert server.connections == 1  # one connection, kept alive


async def test_a_connection_settles_before_it_serves_again(client: httpx.AsyncClient) -> None:
    server = RawServer(replying(OK, OK, OK))
    async with server as port:
        url = f"http://127.0.0.1:{port}/"
        assert (await client.get(url)).content == b"ok"
        assert (await client.get(url)).content == b"ok"  # at once: another connection
        assert server.connections == 2
        await settle()
        assert (await client.get(url)).content == b"ok"
        assert server.connections == 2


async def test_chunked_body_and_headers(client: httpx.AsyncClient) -> None:
    reply = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nX-A: 2\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    async with RawServer(replying(reply, OK)) as port:
        response = await client.get(f"http://127.0.0.1:{port}/")
        assert (response.status_code, response.content) == (201, b"abcde")
        assert response.headers.get_list("x-a") == ["1", "2"]
        await settle()
        assert (
            await client.get(f"http://127.0.0.1:{port}/")
        ).content == b"ok"  # reusable after chunked


async def test_body_until_close(client: httpx.AsyncClient) -> None:
    reply = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it"
    server = RawServer(replying(reply, keep_open=False))
    async with server as port:
        assert (await client.get(f"http://127.0.0.1:{port}/")).content == b"all of it"
        server.handler = replying(OK)
        assert (await client.get(f"http://127.0.0.1:{port}/")).content == b"ok"
    assert server.connections == 2  # Connection: close is honoured


def by_path(replies: dict[bytes, bytes]):  # type: ignore[no-untyped-def]
    """A handler answering each request with the reply for its path, for as
    long as the connection lasts."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, _ = await read_request(reader)
            writer.write(replies[head.split(b" ")[1]])
            await writer.drain()

    return handler


async def test_head_204_304_and_informational(client: httpx.AsyncClient) -> None:
    server = RawServer(
        by_path(
            {
                b"/head": b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",  # no body follows
                b"/204": b"HTTP/1.1 204 No Content\r\n\r\n",
                b"/304": b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n",
                b"/hint": b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                b"/ok": OK,
            }
        )
    )
    async with server as port:
        url = f"http://127.0.0.1:{port}"
        head = await client.head(url + "/head")
        assert (head.status_code, head.headers["content-length"], head.content) == (
            200,
            "1000",
            b"",
        )
        assert (await client.get(url + "/204")).status_code == 204
        assert (await client.get(url + "/304")).status_code == 304
        hinted = await client.get(url + "/hint")
        assert (hinted.status_code, hinted.content, "link" in hinted.headers) == (200, b"ok", False)
        await settle()
        assert (await client.get(url + "/ok")).content == b"ok"
        await settle()
        assert (await client.get(url + "/ok")).content == b"ok"
    # An answer that ends at its headers may be followed by a body a broken
    # upstream sends anyway: HEAD, 204 and 304 connections are never reused.
    # The informational answer and the plain ones share the fourth.
    assert server.connections == 4


async def test_bytes_after_a_complete_answer_are_never_read_as_the_next(
    client: httpx.AsyncClient,
) -> None:
    planted = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nplanted"
    server = RawServer(
        by_path(
            {
                b"/trailing": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
                b"/two": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + planted,
                b"/204-body": b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n" + b"planted",
                b"/ok": OK,
            }
        )
    )
    async with server as port:
        url = f"http://127.0.0.1:{port}"
        for path in ("/trailing", "/two", "/204-body"):
            answer = await client.get(url + path)
            assert answer.status_code in (200, 204)
            assert b"planted" not in answer.content and b"EXTRA" not in answer.content
            assert answer.headers.get_list("content-length") in (["2"], ["7"])
            after = await client.get(url + "/ok")  # on a fresh connection, never the planted bytes
            assert (after.status_code, after.content) == (200, b"ok")
            await settle()
    # each misbehaving answer cost its connection and made the pool distrust
    # the origin: from then on no connection is reused
    assert server.connections == 6


async def test_head_answer_with_a_body_sent_later_is_not_the_next_answer(
    client: httpx.AsyncClient,
) -> None:
    """Python's http.server with do_HEAD = do_GET: headers, then a body."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, _ = await read_request(reader)
            if head.startswith(b"HEAD"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 25\r\n\r\n")
                await writer.drain()
                await asyncio.sleep(0.05)
                writer.write(b"HTTP/1.1 200 OK\r\n\r\nhi!")  # a body that looks like an answer
            else:
                writer.write(OK)
            await writer.drain()

    async with RawServer(handler) as port:
        url = f"http://127.0.0.1:{port}/"
        assert (await client.head(url)).status_code == 200
        for _ in range(5):
            answer = await client.get(url)
            assert (answer.status_code, answer.content) == (200, b"ok")
            await asyncio.sleep(0.02)


async def test_switching_protocols_to_a_plain_request_is_a_protocol_error(
    client: httpx.AsyncClient,
) -> None:
    reply = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nxx"
    )
    async with RawServer(replying(reply)) as port:
        with pytest.raises(httpx.RemoteProtocolError, match="101"):
            await client.get(f"http://127.0.0.1:{port}/")


async def test_header_block_is_limited_as_it_arrives() -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        with contextlib.suppress(ConnectionError):
            for _ in range(10_000):  # 10,000 x 1 KiB, unless the client hangs up first
                writer.write(b"X-Filler: " + b"a" * 1014 + b"\r\n")
                await writer.drain()

    transport = H1Transport(max_connections=2, keepalive_expiry=30, max_header_size=16 * 1024)
    async with httpx.AsyncClient(transport=transport) as client, RawServer(endless) as port:
        with pytest.raises(httpx.RemoteProtocolError, match="header block is larger than 16384"):
            await client.get(f"http://127.0.0.1:{port}/")
        one_big = b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * 20_000 + b"\r\nContent-Length: 2\r\n\r\nok"
        async with RawServer(replying(one_big)) as other:  # all in one read
            with pytest.raises(httpx.RemoteProtocolError, match="header block"):
                await client.get(f"http://127.0.0.1:{other}/")


async def test_request_is_sent_as_built(client: httpx.AsyncClient) -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(OK)
        await writer.drain()

    async with RawServer(handler) as port:
        url = httpx.URL(f"http://127.0.0.1:{port}").copy_with(raw_path=b"/a%2Fb?q=%26")
        await client.post(url, content=b"payload", headers={"X-One": "1"})
    head, body = seen[0]
    assert head.startswith(b"POST /a%2Fb?q=%26 HTTP/1.1\r\n")
    assert b"\r\nx-one: 1\r\n" in head.lower() and body == b"payload"


async def test_streamed_request_body_with_backpressure(client: httpx.AsyncClient) -> None:
    received = bytearray()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(
            next(
                line.split(b":")[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        while len(received) < length:
            received.extend(await reader.read(65536))
            await asyncio.sleep(0)  # a slow reader
        writer.write(OK)
        await writer.drain()

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(64):
            yield b"x" * 65536

    async with RawServer(handler) as port:
        response = await client.put(
            f"http://127.0.0.1:{port}/",
            content=chunks(),
            headers={"Content-Length": str(64 * 65536)},
        )
    assert response.status_code == 200 and len(received) == 64 * 65536


async def test_large_response_streams_with_bounded_buffer(client: httpx.AsyncClient) -> None:
    size = 32 * 1024 * 1024

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        chunk = b"z" * 65536
        for _ in range(size // len(chunk)):
            writer.write(chunk)
            await writer.drain()

    server = RawServer(handler)
    async with server as port, client.stream("GET", f"http://127.0.0.1:{port}/") as response:
        total = 0
        async for part in response.aiter_raw():
            total += len(part)
            await asyncio.sleep(0)
        assert total == size


async def test_stale_kept_alive_connection_is_retried_for_idempotent_requests(
    client: httpx.AsyncClient,
) -> None:
    server = RawServer(replying(OK, keep_open=False))  # answers once, then hangs up
    async with server as port:
        url = f"http://127.0.0.1:{port}/"
        assert (await client.get(url)).content == b"ok"
        await asyncio.sleep(0)  # the close may or may not have arrived yet
        assert (await client.get(url)).content == b"ok"
        assert server.connections == 2


async def test_server_hanging_up_mid_response_is_an_error(client: httpx.AsyncClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
        await writer.drain()
        writer.close()

    async with RawServer(handler) as port:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(f"http://127.0.0.1:{port}/")
        with pytest.raises(httpx.RemoteProtocolError):  # a POST is never sent twice
            await client.post(f"http://127.0.0.1:{port}/", content=b"x")


async def test_garbage_is_a_protocol_error(client: httpx.AsyncClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with RawServer(handler) as port:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(f"http://127.0.0.1:{port}/")


async def test_timeouts(client: httpx.AsyncClient) -> None:
    async def slow_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async def slow_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab")
        await writer.drain()
        await asyncio.sleep(5)

    for handler in (slow_head, slow_body):
        async with RawServer(handler) as port:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(f"http://127.0.0.1:{port}/", timeout=0.2)


async def test_connection_refused_is_a_connect_error(client: httpx.AsyncClient) -> None:
    server = RawServer(replying(OK))
    async with server as port:
        pass
    with pytest.raises(httpx.ConnectError):
        await client.get(f"http://127.0.0.1:{port}/")


async def test_pool_limit_waiting_and_timeout() -> None:
    gate = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            await gate.wait()
            writer.write(OK)
            await writer.drain()

    server = RawServer(handler)
    async with (
        httpx.AsyncClient(transport=H1Transport(max_connections=2, keepalive_expiry=30)) as client,
        server as port,
    ):
        url = f"http://127.0.0.1:{port}/"
        calls = [asyncio.create_task(client.get(url)) for _ in range(5)]
        await asyncio.sleep(0.1)
        assert server.connections == 2  # the others wait for a free connection
        with pytest.raises(httpx.PoolTimeout):
            await client.get(url, timeout=httpx.Timeout(5, pool=0.1))
        gate.set()
        assert [r.status_code for r in await asyncio.gather(*calls)] == [200] * 5
        assert server.connections == 2


async def test_cancelled_call_frees_its_connection() -> None:
    async with httpx.AsyncClient(
        transport=H1Transport(max_connections=1, keepalive_expiry=30)
    ) as client:
        hang = asyncio.Event()

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                head, _ = await read_request(reader)
                if b"/hang" in head:
                    await hang.wait()
                writer.write(OK)
                await writer.drain()

        async with RawServer(handler) as port:
            call = asyncio.create_task(client.get(f"http://127.0.0.1:{port}/hang"))
            await asyncio.sleep(0.05)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            response = await client.get(f"http://127.0.0.1:{port}/ok", timeout=2)
            assert response.status_code == 200


def self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


async def test_tls(tmp_path: Path) -> None:
    server_context, client_context = self_signed(tmp_path)
    transport = H1Transport(max_connections=2, keepalive_expiry=30, ssl_context=client_context)
    async with (
        httpx.AsyncClient(transport=transport) as client,
        RawServer(replying(OK, OK), server_context) as port,
    ):
        for _ in range(2):
            assert (await client.get(f"https://localhost:{port}/")).content == b"ok"
    untrusting = H1Transport(max_connections=1, keepalive_expiry=30)
    async with (
        httpx.AsyncClient(transport=untrusting) as client,
        RawServer(replying(OK), server_context) as port,
    ):
        with pytest.raises(httpx.ConnectError):
            await client.get(f"https://localhost:{port}/")


async def test_a_reader_that_stops_early_leaves_the_connection_readable(
    client: httpx.AsyncClient,
) -> None:
    """A body that has arrived whole but is still buffered past the high-water
    mark (reading paused) when its reader stops: the connection goes back to
    the pool complete, and must read the next answer."""
    big = b"x" * (HIGH_WATER + 1000)  # the last read passes the mark and ends the answer
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(big), big)
    server = RawServer(replying(reply, OK))
    async with server as port:
        url = f"http://127.0.0.1:{port}/"
        async with client.stream("GET", url) as response:
            await asyncio.sleep(0.05)  # all of it arrives, most of it waits in the buffer
            async for _ in response.aiter_raw():
                break  # the reader stops early
        await settle()
        answer = await client.get(url, timeout=2)
        assert answer.content == b"ok"
    assert server.connections == 1
