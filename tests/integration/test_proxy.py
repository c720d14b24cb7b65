"""Proxy routes through the real gateway process (SPEC 3.2, 3.3)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Gateway, GatewayFactory, Stub

ROUTES = """
version: 1
settings:
  max_body_size: 64KiB
upstreams:
  stub: {url: "${STUB}/", timeout: 2s, headers: {X-Upstream-Token: static-secret}}
  based: {url: "${STUB}/echo/base", timeout: 2s}
  down: {url: "http://127.0.0.1:${DOWN_PORT}"}
routes:
  - name: pass
    path: /p/{rest:path}
    methods: [GET, POST, PUT, PATCH, DELETE]
    proxy: {upstream: stub, path: "/{rest}"}
  - name: based
    path: /based/{id}/{rest:path}
    proxy: {upstream: based, path: "/items/{id}/{rest}"}
  - name: uploads
    path: /upload/{rest:path}
    methods: [POST, PUT]
    max_body_size: 50MiB
    proxy: {upstream: stub, path: "/{rest}"}
  - name: down
    path: /down
    proxy: {upstream: down, path: /x}
"""


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, stub: Stub, dead_port: int) -> Gateway:
    return start_gateway(ROUTES, STUB=stub.url, DOWN_PORT=str(dead_port))


def echo(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()


def headers_of(body: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in body["headers"]:
        out.setdefault(name, []).append(value)
    return out


def test_method_path_query_and_body_pass_through(gw: Gateway) -> None:
    body = echo(
        gw.request("PATCH", "/p/echo/a/b", params={"x": "1", "y": "a b"}, content=b"payload")
    )
    assert body["method"] == "PATCH"
    assert body["raw_path"] == "/echo/a/b"
    assert body["query"] == "x=1&y=a+b"
    assert body["body"] == "payload"


def test_upstream_status_and_headers_come_back(gw: Gateway) -> None:
    response = gw.get("/p/status/418")
    assert response.status_code == 418
    assert response.json()["error"] == "as requested"  # proxy routes pass bodies as they are
    cookies = gw.get("/p/cookie/set").headers.get_list("set-cookie")
    assert cookies == ["session=alice-secret; Path=/", "theme=dark; Path=/"]
    redirect = gw.get("/p/redirect")
    assert redirect.status_code == 302
    assert redirect.headers["location"] == "/echo"


def test_base_path_and_template(gw: Gateway) -> None:
    body = echo(gw.get("/based/42/x/y"))
    assert body["raw_path"] == "/echo/base/items/42/x/y"


@pytest.mark.parametrize(
    "path",
    [
        "/p/echo/..%2F..%2Fsecret",
        "/p/echo/%2e%2e/secret",
        "/p/echo/%2E%2E",
        "/p/echo/.",
        "/p/echo/%252e%252e/x",
        "/p/echo/a/%2e/b",
        "/based/..%2fx/y",
        "/based/%2e%2e/y",
        "/based/1/..%5c..%5cx",
    ],
)
def test_traversal_is_refused(gw: Gateway, stub: Stub, path: str) -> None:
    before = stub.stats()["paths"]
    response = raw_get(gw, path)
    assert response.startswith(b"HTTP/1.1 400"), response[:200]
    assert stub.stats()["paths"] == before  # nothing reached the upstream


def test_encoded_slash_in_a_segment_stays_encoded(gw: Gateway) -> None:
    body = echo(httpx.get(gw.url + "/based/a%2Fb/c%3Fd"))
    assert body["raw_path"] == "/echo/base/items/a%2Fb/c%3Fd"


def test_absolute_url_in_a_parameter_cannot_change_host(gw: Gateway) -> None:
    body = echo(httpx.get(gw.url + "/p/echo//evil.example.com/x"))
    assert body["raw_path"] == "/echo//evil.example.com/x"  # still a path on the stub
    body = echo(httpx.get(gw.url + "/based/http:%2F%2Fevil.example.com/x"))
    assert body["raw_path"] == "/echo/base/items/http%3A%2F%2Fevil.example.com/x"


def raw_get(gw: Gateway, path: str, extra: bytes = b"") -> bytes:
    """Send bytes as they are: clients would normalise the path."""
    with socket.create_connection(("127.0.0.1", gw.process.port), timeout=5) as sock:
        sock.sendall(
            b"GET "
            + path.encode()
            + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            + extra
            + b"\r\n"
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_request_headers_sent_upstream(gw: Gateway) -> None:
    body = echo(
        gw.get(
            "/p/echo/h",
            headers={
                "Accept-Language": "fr",
                "X-Custom": "kept",
                "Cookie": "session=x",
                "X-Forwarded-For": "6.6.6.6",
                "X-Forwarded-Host": "evil",
                "X-Upstream-Token": "forged",
                "Connection": "keep-alive, X-Hop",
                "X-Hop": "dropped",
                "TE": "trailers",
                "X-Request-ID": "abc-123",
                "X_Client_Id": "forged",
                "X_User_Id": "forged",
                "X_Forwarded_For": "6.6.6.6",
                "X_Forwarded_Host": "evil",
                "X_Request_Id": "forged",
                "Transfer_Encoding": "chunked",
            },
        )
    )
    headers = headers_of(body)
    assert headers["x-custom"] == ["kept"]  # proxy routes forward end-to-end headers
    assert headers["accept-language"] == ["fr"]
    assert "cookie" not in headers  # never, unless named in forward_headers
    assert headers["x-forwarded-for"] == ["127.0.0.1"]  # an untrusted client's own value is dropped
    assert headers["x-forwarded-host"] == [gw.url.removeprefix("http://")]
    assert headers["x-forwarded-proto"] == ["http"]
    assert headers["x-upstream-token"] == ["static-secret"]  # static headers win over the client's
    assert "x-hop" not in headers
    assert "te" not in headers
    assert headers["x-request-id"] == ["abc-123"]
    assert headers["host"] == [gw_stub_host(body)]
    assert not [name for name in headers if "_" in name]  # dropped before anything read them


def gw_stub_host(body: dict[str, Any]) -> str:
    return dict(body["headers"])["host"]


def test_hop_by_hop_response_headers_are_dropped(gw: Gateway) -> None:
    response = gw.get("/p/hop-headers")
    assert response.status_code == 200
    assert response.headers["x-end-to-end"] == "kept"
    for name in ("x-internal", "keep-alive", "proxy-authenticate", "trailer"):
        assert name not in response.headers, name
    assert response.headers["x-request-id"]


def test_undecodable_path_is_400(gw: Gateway) -> None:
    response = raw_get(gw, "/p/%ff%fe")
    assert response.startswith(b"HTTP/1.1 400")
    assert b"application/problem+json" in response


def test_too_many_query_fields_is_400(gw: Gateway, stub: Stub) -> None:
    """The limit Django applies when it parses a query holds on proxy routes
    too, which pass the query on as it came."""
    assert gw.get("/p/echo/q?" + "&".join("f=1" for _ in range(1000))).status_code == 200
    before = stub.count("/echo/q")
    response = gw.get("/p/echo/q?" + "&".join("f=1" for _ in range(1001)))
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "more than 1000 parameters" in response.json()["detail"]
    assert stub.count("/echo/q") == before


def test_underscore_headers_pass_only_when_allowed(
    start_gateway: GatewayFactory, stub: Stub, dead_port: int
) -> None:
    allowed = start_gateway(
        ROUTES, STUB=stub.url, DOWN_PORT=str(dead_port), ALLOW_UNDERSCORE_HEADERS="on"
    )
    headers = headers_of(echo(allowed.get("/p/echo/u", headers={"X_Custom": "kept"})))
    assert headers["x_custom"] == ["kept"]
    allowed.process.stop()


def test_streamed_download_keeps_memory_flat(gw: Gateway) -> None:
    size = 200 * 1024 * 1024
    rss_before = gw.process.status("VmRSS")
    received = 0
    peak = 0
    with httpx.stream("GET", gw.url + f"/p/big/{size}", timeout=60) as response:
        assert response.status_code == 200
        for chunk in response.iter_raw(1 << 20):
            received += len(chunk)
            peak = max(peak, gw.process.status("VmRSS"))
    assert received == size
    grown_mb = (max(peak, gw.process.status("VmHWM")) - rss_before) / 1024
    assert grown_mb < 50, f"resident memory grew by {grown_mb:.0f} MB"


def test_large_upload_is_spooled_and_streamed(gw: Gateway) -> None:
    size = 20 * 1024 * 1024
    rss_before = gw.process.status("VmRSS")
    body = echo(
        gw.request(
            "POST",
            "/upload/echo/u",
            content=b"z" * size,
            headers={"content-type": "application/octet-stream"},
        )
    )
    assert body["body_size"] == size
    assert ["content-length", str(size)] in body["headers"]
    grown_mb = (gw.process.status("VmHWM") - rss_before) / 1024
    assert grown_mb < 15, f"resident memory grew by {grown_mb:.0f} MB for a 20 MB upload"


def test_body_over_the_limit_is_refused_before_it_is_read(gw: Gateway, stub: Stub) -> None:
    response = gw.request("POST", "/p/echo/big", content=b"a" * (65 * 1024))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["route"] == "pass"
    assert stub.count("/echo/big") == 0


def test_chunked_body_over_the_limit_is_refused_as_it_arrives(gw: Gateway, stub: Stub) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b"b" * 1024

    response = gw.request("POST", "/p/echo/chunked", content=chunks())
    assert response.status_code == 413
    assert stub.count("/echo/chunked") == 0


def test_route_can_raise_its_own_body_limit(gw: Gateway) -> None:
    body = echo(gw.request("PUT", "/upload/echo/ok", content=b"c" * (1024 * 1024)))
    assert body["body_size"] == 1024 * 1024


def test_unreachable_upstream_is_502(gw: Gateway) -> None:
    response = gw.get("/down")
    assert response.status_code == 502
    assert response.json()["backend"] == "down"


def test_client_disconnect_cancels_the_upstream_call(gw: Gateway, stub: Stub) -> None:
    before = stub.stats()["disconnects"]
    with socket.create_connection(("127.0.0.1", gw.process.port)) as sock:
        sock.sendall(b"GET /p/hang HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 3
        while stub.stats()["active"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
    deadline = time.monotonic() + 3
    while stub.stats()["disconnects"] == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert stub.stats()["disconnects"] == before + 1


def test_without_cors_upstream_cors_headers_pass_through(gw: Gateway) -> None:
    response = gw.get("/p/cors", headers={"Origin": "https://app.example.com"})
    assert response.headers["access-control-allow-origin"] == "*"  # the upstream's own
    assert "vary" not in response.headers
