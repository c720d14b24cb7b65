"""The response cache through real gateway processes (SPEC 3.6)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.integration.conftest import Gateway, GatewayFactory, RedisServer, Stub

ROUTES = """
version: 1
upstreams:
  stub: {url: "${STUB}"}
  down: {url: "http://127.0.0.1:${DOWN_PORT}"}
auth:
  keys:
    type: api_key
    keys: [{id: a, key: key-a}, {id: b, key: key-b}]
routes:
  - name: cached
    path: /cached/{id}
    cache: {ttl: 1s}
    backends:
      - {upstream: stub, path: "/delay/300/one/{id}", key: one, allow: [path, query]}
      - {upstream: stub, path: "/delay/300/two/{id}", key: two, allow: [path]}
  - name: private
    path: /private
    auth: keys
    cache: {ttl: 60s}
    backends: [{upstream: stub, path: /echo/private, allow: [path]}]
  - name: partial
    path: /partial
    cache: {ttl: 60s}
    backends:
      - {upstream: stub, path: /echo/partial, key: ok, allow: [path]}
      - {upstream: down, path: /x, key: gone, required: false}
"""


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, stub: Stub, dead_port: int) -> Gateway:
    return start_gateway(ROUTES, STUB=stub.url, DOWN_PORT=str(dead_port))


async def concurrent_gets(url: str, n: int, **kwargs: object) -> list[httpx.Response]:
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=n), timeout=30) as client:
        return await asyncio.gather(*(client.get(url, **kwargs) for _ in range(n)))  # type: ignore[arg-type]


def test_identical_concurrent_misses_share_one_fan_out(gw: Gateway, stub: Stub) -> None:
    responses = asyncio.run(concurrent_gets(gw.url + "/cached/1", 20))
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert len({r.headers["x-request-id"] for r in responses}) == 20  # each answer is its own
    assert stub.count("/delay/300/one/1") == 1
    assert stub.count("/delay/300/two/1") == 1
    hit = gw.get("/cached/1")
    assert hit.headers["x-cache"] == "HIT" and hit.content == responses[0].content
    assert stub.count("/delay/300/one/1") == 1
    time.sleep(1.1)  # ttl
    assert gw.get("/cached/1").headers["x-cache"] == "MISS"
    assert stub.count("/delay/300/one/1") == 2


def test_key_is_route_path_sorted_query_and_forwarded_headers(gw: Gateway, stub: Stub) -> None:
    assert gw.get("/cached/2?b=2&a=1").headers["x-cache"] == "MISS"
    assert gw.get("/cached/2?a=1&b=2").headers["x-cache"] == "HIT"
    assert gw.get("/cached/2?a=1").headers["x-cache"] == "MISS"
    assert gw.get("/cached/3?a=1&b=2").headers["x-cache"] == "MISS"
    assert (
        gw.get("/cached/2?a=1&b=2", headers={"Accept-Language": "fr"}).headers["x-cache"] == "MISS"
    )


def test_identity_is_part_of_the_key(gw: Gateway, stub: Stub) -> None:
    assert gw.get("/private", headers={"X-API-Key": "key-a"}).headers["x-cache"] == "MISS"
    assert gw.get("/private", headers={"X-API-Key": "key-a"}).headers["x-cache"] == "HIT"
    assert gw.get("/private", headers={"X-API-Key": "key-b"}).headers["x-cache"] == "MISS"
    assert gw.get("/private").status_code == 401  # auth still runs before the cache
    assert stub.count("/echo/private") == 2


def test_partial_answers_are_not_stored(gw: Gateway, stub: Stub) -> None:
    for _ in range(2):
        response = gw.get("/partial")
        assert response.headers["x-gateway-completed"] == "false"
        assert response.headers["x-cache"] == "MISS"
    assert stub.count("/echo/partial") == 2


def test_redis_store_is_shared_and_bypassed_when_down(
    start_gateway: GatewayFactory, stub: Stub, redis_server: RedisServer
) -> None:
    one = start_gateway(ROUTES, STUB=stub.url, DOWN_PORT="9", REDIS_URL=redis_server.url)
    two = start_gateway(ROUTES, STUB=stub.url, DOWN_PORT="9", REDIS_URL=redis_server.url)
    public = {"Host": "api.example.com"}  # replicas behind one name see the same Host
    assert one.get("/cached/redis", headers=public).headers["x-cache"] == "MISS"
    assert two.get("/cached/redis", headers=public).headers["x-cache"] == "HIT"  # another replica's
    # X-Forwarded-Host reaches the backends: another Host is another entry
    other = {"Host": "other.example.com"}
    assert two.get("/cached/redis", headers=other).headers["x-cache"] == "MISS"
    redis_server.kill()
    down = one.get("/cached/redis-down")
    assert down.status_code == 200 and down.headers["x-cache"] == "MISS"
