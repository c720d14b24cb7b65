"""The hot-path httpx objects are the same as httpx's own (gateway/upstream/requests.py).
If an httpx upgrade changes the internals they rely on, these fail."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import respx

from gateway.upstream.requests import Origin, build_request, send
from tests.conftest import table

UPSTREAMS = table(
    """
    version: 1
    upstreams:
      plain: {url: "http://users.svc:8080/base"}
      default: {url: "http://users.svc"}
      tls: {url: "https://[2001:db8::1]:8443"}
    routes: []
    """
).upstreams


def plain_origin() -> Origin:
    plain = UPSTREAMS["plain"]
    return Origin(plain.scheme, plain.host, plain.port)


@pytest.mark.parametrize("name", ["plain", "default", "tls"])
@pytest.mark.parametrize(
    ("path", "query"), [("/a%2Fb/c", ""), ("/x", "q=a%20b&z=%26"), ("/", "a=1")]
)
def test_urls_equal_httpx_urls(name: str, path: str, query: str) -> None:
    upstream = UPSTREAMS[name]
    fast = Origin(upstream.scheme, upstream.host, upstream.port).url(path, query)
    raw = (path + ("?" + query if query else "")).encode()
    slow = httpx.URL(scheme=upstream.scheme, host=upstream.host, port=upstream.port, raw_path=raw)
    assert fast == slow
    assert str(fast) == str(slow) and fast.raw_path == slow.raw_path and fast.netloc == slow.netloc
    assert (fast.scheme, fast.host, fast.port, fast.query) == (
        slow.scheme,
        slow.host,
        slow.port,
        slow.query,
    )


def test_host_header_is_what_httpx_sends() -> None:
    for upstream in UPSTREAMS.values():
        origin = Origin(upstream.scheme, upstream.host, upstream.port)
        url = origin.url("/p")
        assert origin.host_header == (b"host", httpx.Request("GET", url).headers["host"].encode())


@pytest.mark.parametrize("content", [None, b"", b'{"a": 1}'])
def test_requests_equal_httpx_requests(content: bytes | None) -> None:
    origin = plain_origin()
    url = origin.url("/base/users/7", "x=1")
    headers = [
        (b"accept", b"application/json"),
        (b"x-request-id", b"r1"),
        (b"x-multi", b"1"),
        (b"x-multi", b"2"),
    ]
    fast = build_request(
        "POST", url, origin.host_header, headers, content, extensions={"timeout": {"read": 1.0}}
    )
    slow = httpx.Request(
        "POST", url, headers=headers, content=content, extensions={"timeout": {"read": 1.0}}
    )
    assert fast.method == slow.method and fast.url == slow.url
    assert sorted(fast.headers.multi_items()) == sorted(slow.headers.multi_items())
    assert fast.content == slow.content and fast.read() == slow.read()
    assert fast.extensions == slow.extensions


async def test_streamed_body() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"ab"
        yield b"cd"

    origin = plain_origin()
    fast = build_request(
        "PUT", origin.url("/u"), origin.host_header, [], chunks(), content_length=4
    )
    assert fast.headers["content-length"] == "4"
    with pytest.raises(httpx.RequestNotRead):
        _ = fast.content
    assert await fast.aread() == b"abcd"


async def test_send_goes_through_the_clients_transport_and_respx() -> None:
    origin = plain_origin()
    async with httpx.AsyncClient() as client:
        with respx.mock(using="httpx") as mock:
            route = mock.get("http://users.svc:8080/base/u").respond(json={"ok": True})
            request = build_request(
                "GET", origin.url("/base/u"), origin.host_header, [(b"x-a", b"1")]
            )
            response = await send(client, request)
            assert response.request is request
            assert await response.aread() == b'{"ok":true}'
    assert route.calls.last.request.headers["x-a"] == "1"
