"""CORS through the real gateway process (SPEC 3.8)."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Gateway, GatewayFactory, Stub

ROUTES = """
version: 1
settings:
  cors:
    allow_origins: [https://app.example.com]
    allow_headers: [Authorization, Content-Type, X-API-Key]
    allow_credentials: true
    max_age: 10m
upstreams:
  stub: {url: "${STUB}"}
auth:
  keys: {type: api_key, keys: [{id: a, key: key-a}]}
routes:
  - name: guarded
    path: /guarded
    methods: [GET, POST]
    auth: keys
    rate_limit: {limit: 1, window: 1h}
    backends: [{upstream: stub, path: /echo/guarded, allow: [method]}]
  - name: proxied
    path: /p/{rest:path}
    proxy: {upstream: stub, path: "/{rest}"}
  - name: anyone
    path: /anyone
    cors: {allow_origins: ["*"]}
    backends: [{upstream: stub, path: /echo/anyone, allow: [method]}]
"""
APP = "https://app.example.com"


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, stub: Stub) -> Gateway:
    return start_gateway(ROUTES, STUB=stub.url)


def preflight(gw: Gateway, path: str, origin: str, method: str = "POST"):  # type: ignore[no-untyped-def]
    return gw.request(
        "OPTIONS",
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "x-api-key",
        },
    )


def test_preflight_is_answered_before_auth_and_limits(gw: Gateway, stub: Stub) -> None:
    for _ in range(3):  # the rate limit (1 per hour) would refuse the second
        response = preflight(gw, "/guarded", APP)
        assert response.status_code == 204
        assert response.headers["access-control-allow-origin"] == APP
        assert response.headers["access-control-allow-methods"] == "GET, HEAD, POST"
        assert (
            response.headers["access-control-allow-headers"]
            == "authorization, content-type, x-api-key"
        )
        assert response.headers["access-control-allow-credentials"] == "true"
        assert response.headers["access-control-max-age"] == "600"
        assert "ratelimit-limit" not in response.headers
    assert stub.count("/echo/guarded") == 0  # never forwarded


def test_actual_responses_carry_the_origin(gw: Gateway) -> None:
    response = gw.get("/guarded", headers={"Origin": APP, "X-API-Key": "key-a"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "Origin" in response.headers["vary"]
    denied = gw.get("/guarded", headers={"Origin": APP})  # errors are readable by the app too
    assert denied.status_code == 401 and denied.headers["access-control-allow-origin"] == APP


def test_disallowed_origin_gets_no_cors_headers(gw: Gateway) -> None:
    response = preflight(gw, "/guarded", "https://evil.example.com")
    assert not [h for h in response.headers if h.startswith("access-control-")]
    actual = gw.get("/p/echo/x", headers={"Origin": "https://evil.example.com"})
    assert not [h for h in actual.headers if h.startswith("access-control-")]


def test_upstream_cors_headers_never_appear_twice(gw: Gateway) -> None:
    response = gw.get("/p/cors", headers={"Origin": APP})
    assert response.headers.get_list("access-control-allow-origin") == [APP]
    assert "access-control-max-age" not in response.headers


def test_wildcard_never_allows_credentials(gw: Gateway) -> None:
    response = gw.get("/anyone", headers={"Origin": "https://other.example.org"})
    assert response.headers["access-control-allow-origin"] == "https://other.example.org"
    assert "access-control-allow-credentials" not in response.headers
    assert (
        preflight(gw, "/anyone", "https://x.example", "GET").headers["access-control-allow-methods"]
        == "GET, HEAD"
    )
