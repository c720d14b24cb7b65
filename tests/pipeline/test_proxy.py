"""The proxy route kind (gateway/pipeline/proxy.py) against respx: what the
upstream is sent (the client's end-to-end headers, never a forged identity,
a cookie or a consumed credential; the gateway's own), and what comes back
(streamed, the upstream's hop-by-hop and CORS headers dropped)."""

from __future__ import annotations

import httpx
import pytest
import respx

from gateway.envelope import Caller, Hooked, UpstreamEdits
from gateway.errors import BackendFailed, TooManyStreams
from gateway.pipeline.proxy import ProxyHandler, ProxyResponse
from tests.calls import context, http_call
from tests.conftest import table

ROUTES = table(
    """
    version: 1
    upstreams:
      files: {url: "http://files.svc/api", headers: {X-Static: s}, max_streams: 1}
    auth:
      keys: {type: api_key, header: X-Key, identity_header: X-Client, keys: [{id: a, key: k}]}
    routes:
      - {name: files, path: "/files/{rest:path}", methods: [GET, POST], auth: keys, cors: {allow_origins: ["*"]}, proxy: {upstream: files, path: "/v1/{rest}"}}
      - {name: plain, path: "/plain", proxy: {upstream: files, path: "/plain"}}
    """
)
FILES, PLAIN = ROUTES.routes


async def body_of(response: ProxyResponse) -> bytes:
    parts = [part async for part in response.relay]
    await response.aclose_upstream()
    return b"".join(parts)


@respx.mock(using="httpx", assert_all_called=True)
async def test_what_the_upstream_is_sent(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post("http://files.svc/api/v1/a/b%20c").respond(200, text="stored")
    call = http_call(
        FILES,
        method="POST",
        path="/files/a/b%20c",
        query=b"x=1&y=2",
        body=b"payload",
        headers={
            "X-Key": "k",
            "X-Client": "forged",
            "Cookie": "c=1",
            "Accept-Language": "de",
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "1",
            "Content-Type": "text/plain",
        },
        caller=Caller("a", "keys", ((b"x-client", b"a"),)),
    )
    response = await ProxyHandler(FILES, context(ROUTES))(call)
    assert await body_of(response) == b"stored"
    sent = route.calls.last.request
    assert sent.url.query == b"x=1&y=2" and sent.content == b"payload"
    headers = sent.headers
    assert headers["x-client"] == "a"  # the gateway's, never the client's copy
    assert "x-key" not in headers and "cookie" not in headers  # consumed; not forwarded
    assert "x-hop" not in headers and headers.get("connection") != "keep-alive, X-Hop"
    assert headers["accept-language"] == "de" and headers["x-static"] == "s"
    assert headers["x-request-id"] == "rid-1" and headers["x-forwarded-for"] == "192.0.2.1"
    assert [(b.name, b.status, b.outcome) for b in call.envelope.log.backends] == [
        ("files", 200, "ok")
    ]


@respx.mock(using="httpx")
async def test_request_hooks_edits_go_to_the_upstream(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get("http://files.svc/api/plain").respond(204)
    call = http_call(PLAIN, headers={"X-Drop": "1"})
    call.envelope.hooked = Hooked(lambda: None)  # type: ignore[arg-type, return-value]
    call.envelope.hooked.edits = UpstreamEdits(((b"x-tenant", b"t"),), frozenset({b"x-drop"}))
    response = await ProxyHandler(PLAIN, context(ROUTES))(call)
    await body_of(response)
    sent = route.calls.last.request.headers
    assert sent["x-tenant"] == "t" and "x-drop" not in sent


@respx.mock(using="httpx")
async def test_what_comes_back(respx_mock: respx.MockRouter) -> None:
    respx_mock.get("http://files.svc/api/v1/x").respond(
        201,
        headers={
            "Access-Control-Allow-Origin": "https://upstream.example",
            "Set-Cookie": "a=1",
            "Connection": "close",
            "X-Request-ID": "upstream's",
            "Content-Type": "text/plain",
        },
        text="made",
    )
    call = http_call(FILES, path="/files/x", headers={"X-Key": "k"})
    response = await ProxyHandler(FILES, context(ROUTES))(call)
    names = {n for n, _ in response.raw_headers}
    assert response.status_code == 201
    assert b"access-control-allow-origin" not in names  # the route's CORS is the gateway's
    assert b"connection" not in names and b"x-request-id" not in names
    assert (b"set-cookie", b"a=1") in response.raw_headers
    assert await body_of(response) == b"made"


@respx.mock(using="httpx")
async def test_an_event_stream_holds_a_stream_slot_and_gets_no_cache(
    respx_mock: respx.MockRouter,
) -> None:
    respx_mock.get("http://files.svc/api/plain").respond(
        200, headers={"Content-Type": "text/event-stream"}, text="data: 1\n\n"
    )
    built = context(ROUTES)
    handler = ProxyHandler(PLAIN, built)
    first = await handler(http_call(PLAIN))
    assert (b"cache-control", b"no-cache") in first.raw_headers
    assert (b"x-accel-buffering", b"no") in first.raw_headers
    with pytest.raises(TooManyStreams):  # max_streams: 1, refused before the upstream is asked
        await handler(http_call(PLAIN, headers={"Accept": "text/event-stream"}))
    await body_of(first)  # its slot is given back with it
    again = await handler(http_call(PLAIN, headers={"Accept": "text/event-stream"}))
    await body_of(again)


@respx.mock(using="httpx")
async def test_an_upstream_that_cannot_be_reached_is_502(respx_mock: respx.MockRouter) -> None:
    respx_mock.get("http://files.svc/api/plain").mock(side_effect=httpx.ConnectError("refused"))
    call = http_call(PLAIN)
    with pytest.raises(BackendFailed) as failed:
        await ProxyHandler(PLAIN, context(ROUTES))(call)
    assert failed.value.status == 502 and failed.value.backend == "files"
    assert call.envelope.log.backends[0].outcome == "connect"
