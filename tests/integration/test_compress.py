"""`compress` through a real gateway (SPEC 3.16): negotiation with q-values,
whole answers and streams (an SSE event still arrives at once), Vary, weak
ETags, already-encoded answers passed as they came, cached answers
compressed per client, `compress: null`."""

from __future__ import annotations

import gzip
import json
import socket
import time
import zlib
from typing import Any

import brotli
import pytest
import zstandard

from tests.integration.conftest import Gateway, GatewayFactory
from tests.processes import Stub

ROUTES = """
version: 1
upstreams:
  stub: {{url: "{url}"}}
routes:
  - name: objects
    path: /objects
    proxy: {{upstream: stub, path: /objects/300}}
  - name: small
    path: /small
    proxy: {{upstream: stub, path: /objects/2}}
  - name: binary
    path: /binary
    proxy: {{upstream: stub, path: /big/5000}}
  - name: gzipped
    path: /gzipped
    proxy: {{upstream: stub, path: /gzipped}}
  - name: etag
    path: /etag
    proxy: {{upstream: stub, path: /etag}}
  - name: events
    path: /events
    proxy: {{upstream: stub, path: /sse/3/1500}}
  - name: merged
    path: /merged
    cache: {{ttl: 30s}}
    backends:
      - {{upstream: stub, path: /objects/300, key: objects}}
  - name: gzip-only
    path: /gzip-only
    compress: {{algorithms: [gzip], min_size: 100}}
    proxy: {{upstream: stub, path: /objects/300}}
  - name: plain
    path: /plain
    compress: null
    proxy: {{upstream: stub, path: /objects/300}}
  - name: progressive
    path: /progressive
    stream: true
    backends:
      - {{upstream: stub, path: /objects/60, key: first}}
      - {{upstream: stub, path: /delay/1500/late, key: late}}
  - name: post
    path: /post
    methods: [POST]
    proxy: {{upstream: stub, path: /echo/post}}
"""


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, stub: Stub) -> Gateway:
    return start_gateway(ROUTES.format(url=stub.url))


def _raw(gw: Gateway, path: str, accept: str | None) -> tuple[dict[str, str], bytes]:
    """None: no Accept-Encoding at all (httpx sends one of its own otherwise)."""
    if accept is None:
        return _without_accept_encoding(gw, path)
    headers = {"Accept-Encoding": accept}
    with gw.client.stream("GET", path, headers=headers) as answer:
        body = b"".join(answer.iter_raw())
        return dict(answer.headers), body


def _without_accept_encoding(gw: Gateway, path: str) -> tuple[dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", gw.process.port), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")[1:]
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    if headers.get("transfer-encoding") == "chunked":
        body = _unchunk(body)
    return headers, body


def _decode(encoding: str, body: bytes) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "br":
        return bytes(brotli.decompress(body))
    return zstandard.ZstdDecompressor().decompressobj().decompress(body)


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        ("gzip, deflate, br, zstd", "zstd"),  # equal q: the first of algorithms
        ("gzip", "gzip"),
        ("br;q=1.0, gzip;q=0.5", "br"),
        ("zstd;q=0.1, gzip;q=0.9", "gzip"),
        ("*", "zstd"),
        ("gzip;q=0, *;q=0.5", "zstd"),
        ("zstd;q=0, br;q=0, gzip;q=0", None),
        ("identity", None),
        ("", None),
        (None, None),
    ],
)
def test_the_encoding_is_negotiated(gw: Gateway, accept: str | None, chosen: str | None) -> None:
    headers, body = _raw(gw, "/objects", accept)
    assert "accept-encoding" in headers["vary"].lower()
    if chosen is None:
        assert "content-encoding" not in headers
        assert len(json.loads(body)) == 300
        return
    assert headers["content-encoding"] == chosen
    assert "content-length" not in headers  # a stream: its length changed
    assert len(json.loads(_decode(chosen, body))) == 300
    assert len(body) * 5 < len(_decode(chosen, body))


def test_small_answers_and_other_types_pass(gw: Gateway) -> None:
    headers, _ = _raw(gw, "/small", "gzip")
    assert "content-encoding" not in headers  # under min_size (its Content-Length says so)
    headers, body = _raw(gw, "/binary", "gzip")  # application/octet-stream
    assert "content-encoding" not in headers
    assert "accept-encoding" not in headers.get("vary", "").lower()
    assert body == b"x" * 5000


def test_an_encoded_answer_is_not_encoded_twice(gw: Gateway) -> None:
    headers, body = _raw(gw, "/gzipped", "zstd, br, gzip")
    assert headers["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(body))["items"][0] == "same"


def test_a_strong_etag_turns_weak(gw: Gateway) -> None:
    headers, _ = _raw(gw, "/etag", "gzip")
    assert headers["etag"] == 'W/"v1"'
    headers, _ = _raw(gw, "/etag", None)
    assert headers["etag"] == '"v1"'


def test_a_cached_aggregate_is_compressed_for_each_client(gw: Gateway) -> None:
    first_headers, first = _raw(gw, "/merged", "gzip")
    second_headers, second = _raw(gw, "/merged", "br")
    plain_headers, plain = _raw(gw, "/merged", None)
    assert first_headers["content-encoding"] == "gzip"
    assert second_headers["content-encoding"] == "br"
    assert "content-encoding" not in plain_headers
    assert gzip.decompress(first) == brotli.decompress(second) == plain
    assert "content-length" not in first_headers  # the length changed: the server frames it


def test_route_settings_and_null(gw: Gateway) -> None:
    headers, _ = _raw(gw, "/gzip-only", "zstd, gzip;q=0.5")
    assert headers["content-encoding"] == "gzip"
    headers, _ = _raw(gw, "/plain", "gzip")
    assert "content-encoding" not in headers


def test_head_and_request_bodies_pass_unchanged(gw: Gateway) -> None:
    assert (
        "content-encoding"
        not in gw.request("HEAD", "/objects", headers={"Accept-Encoding": "gzip"}).headers
    )
    packed = gzip.compress(b'{"a": 1}')
    answer = gw.request(
        "POST",
        "/post",
        content=packed,
        headers={
            "Content-Encoding": "gzip",
            "Content-Type": "application/json",
            "Accept-Encoding": "identity",
        },
    )
    echoed = answer.json()
    assert echoed["body_size"] == len(packed)  # passed on as it came, not decompressed
    assert ["content-encoding", "gzip"] in echoed["headers"]


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
def test_a_streamed_event_arrives_at_once(gw: Gateway, encoding: str) -> None:
    """The stub sends an event, then waits 1.5 s before the next: the first
    must decode on its own well before the second is sent."""
    with socket.create_connection(("127.0.0.1", gw.process.port), timeout=10) as sock:
        sock.sendall(
            b"GET /events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n"
            b"Accept-Encoding: " + encoding.encode() + b"\r\n\r\n"
        )
        started = time.monotonic()
        received = b""
        decoded = b""
        decoder = _StreamDecoder(encoding)
        while b"data:" not in decoded:
            received += sock.recv(65536)
            head, _, rest = received.partition(b"\r\n\r\n")
            if not rest:
                continue
            assert b"content-encoding: " + encoding.encode() in head.lower()
            decoded = decoder(_unchunk(rest))
        assert time.monotonic() - started < 1.0
        assert b'"n": 0' in decoded


class _StreamDecoder:
    """Decodes a growing encoded body: each call gets all of it so far."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.inflater: Any = (
            zlib.decompressobj(31)
            if encoding == "gzip"
            else brotli.Decompressor()
            if encoding == "br"
            else zstandard.ZstdDecompressor().decompressobj()
        )
        self.seen = 0
        self.out = b""

    def __call__(self, data: bytes) -> bytes:
        fresh, self.seen = data[self.seen :], len(data)
        if self.encoding == "br":
            self.out += self.inflater.process(fresh)
        else:
            self.out += self.inflater.decompress(fresh)
        return self.out


def _unchunk(data: bytes) -> bytes:
    """The complete chunks of a chunked body so far."""
    out = b""
    while True:
        size_line, sep, rest = data.partition(b"\r\n")
        if not sep:
            return out
        size = int(size_line.split(b";")[0], 16)
        if size == 0 or len(rest) < size + 2:
            return out
        out += rest[:size]
        data = rest[size + 2 :]


@pytest.mark.parametrize("accept", ["text/event-stream", "application/x-ndjson"])
def test_a_progressive_record_arrives_at_once_compressed(gw: Gateway, accept: str) -> None:
    """Progressive aggregation: the fast backend's record decodes before the
    slow one (1.5 s) has answered."""
    with socket.create_connection(("127.0.0.1", gw.process.port), timeout=10) as sock:
        sock.sendall(
            b"GET /progressive HTTP/1.1\r\nHost: localhost\r\nAccept: "
            + accept.encode()
            + b"\r\nAccept-Encoding: gzip\r\n\r\n"
        )
        started = time.monotonic()
        received, decoded = b"", b""
        decoder = _StreamDecoder("gzip")
        while b'"first"' not in decoded:
            received += sock.recv(65536)
            head, _, rest = received.partition(b"\r\n\r\n")
            if rest:
                assert b"content-encoding: gzip" in head.lower()
                decoded = decoder(_unchunk(rest))
        assert time.monotonic() - started < 1.0
