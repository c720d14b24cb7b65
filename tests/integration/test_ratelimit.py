"""Rate limits through real gateway processes and a real redis-server (SPEC 3.5)."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.certs import Authority
from tests.integration.conftest import Gateway, GatewayFactory, RedisServer, Stub

ROUTES = """
version: 1
upstreams:
  stub: {url: "${STUB}"}
routes:
  - name: burst
    path: /burst/{n}
    rate_limit: {limit: 1, window: 1h, burst: 50}
    backends: [{upstream: stub, path: "/echo/burst/{n}"}]
  - name: spoof
    path: /spoof
    rate_limit: {limit: 1, window: 1h, burst: 50}
    backends: [{upstream: stub, path: /echo/spoof}]
  - name: per-second
    path: /per-second
    rate_limit: {limit: 2, window: 1s}
    backends: [{upstream: stub, path: /echo/ps}]
  - name: by-header
    path: /by-header
    rate_limit: {limit: 1, window: 1h, key: "header:X-Tenant"}
    backends: [{upstream: stub, path: /echo/bh}]
  - name: global
    path: /global
    rate_limit: {limit: 2, window: 1h, key: global}
    backends: [{upstream: stub, path: /echo/g}]
  - name: open
    path: /open
    backends: [{upstream: stub, path: /echo/open}]
"""


async def hammer(urls: list[str], headers: dict[str, str] | None = None) -> list[httpx.Response]:
    async with httpx.AsyncClient(
        limits=httpx.Limits(max_connections=len(urls)), timeout=30
    ) as client:
        return await asyncio.gather(*(client.get(url, headers=headers) for url in urls))


def store_errors(gw: Gateway) -> float:
    found = re.search(
        r"^gateway_ratelimit_store_errors_total (\S+)$", gw.admin_get("/metrics").text, re.M
    )
    return float(found[1]) if found else 0.0


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, stub: Stub) -> Gateway:
    return start_gateway(ROUTES, STUB=stub.url)


def test_burst_is_exact_under_concurrency(gw: Gateway, stub: Stub) -> None:
    responses = asyncio.run(hammer([gw.url + "/burst/1"] * 200))
    assert statuses(responses) == {200: 50, 429: 150}
    assert stub.count("/echo/burst/1") == 50


def test_headers(gw: Gateway) -> None:
    first = gw.get("/per-second")
    assert first.status_code == 200
    assert first.headers["ratelimit-limit"] == "2"
    assert first.headers["ratelimit-remaining"] == "1"
    assert first.headers["ratelimit-reset"] == "1"
    gw.get("/per-second")
    refused = gw.get("/per-second")
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert refused.json()["route"] == "per-second"
    time.sleep(1.1)
    assert gw.get("/per-second").status_code == 200  # refilled


def test_spoofed_forwarded_for_neither_dodges_nor_locks_out(gw: Gateway) -> None:
    spoofed = [gw.get("/spoof", headers={"X-Forwarded-For": f"10.0.0.{i}"}) for i in range(60)]
    assert statuses(spoofed) == {200: 50, 429: 10}  # one bucket: the real peer's


def test_header_keys(gw: Gateway) -> None:
    assert gw.get("/by-header", headers={"X-Tenant": "a"}).status_code == 200
    assert gw.get("/by-header", headers={"X-Tenant": "a"}).status_code == 429
    assert gw.get("/by-header", headers={"X-Tenant": "b"}).status_code == 200
    assert gw.get("/by-header").status_code == 200  # no header: the client address
    assert gw.get("/by-header").status_code == 429


def test_global_key_and_unlimited_routes(gw: Gateway) -> None:
    assert statuses([gw.get("/global") for _ in range(3)]) == {200: 2, 429: 1}
    assert "ratelimit-limit" not in gw.get("/open").headers


def test_replicas_share_one_bucket_through_redis(
    start_gateway: GatewayFactory, stub: Stub, shared_redis: RedisServer
) -> None:
    one = start_gateway(ROUTES, STUB=stub.url, REDIS_URL=shared_redis.url)
    two = start_gateway(ROUTES, STUB=stub.url, REDIS_URL=shared_redis.url)
    assert one.get("/readyz").status_code == 200
    # Each replica's Redis connections opened first (another route's bucket): on a
    # loaded 2-core machine, opening 64 at once inside the burst can pass
    # the 0.5 s Redis timeout, and a timed-out decision fails open.
    asyncio.run(hammer([one.url + "/per-second", two.url + "/per-second"] * 64))
    errors_before = [store_errors(g) for g in (one, two)]
    urls = [one.url + "/burst/3", two.url + "/burst/3"] * 100
    responses = asyncio.run(hammer(urls))
    # Had Redis failed a decision, it would have failed open: say so, not "51".
    assert [store_errors(g) for g in (one, two)] == errors_before
    assert statuses(responses) == {200: 50, 429: 150}
    assert stub.count("/echo/burst/3") == 50


@pytest.mark.parametrize(("mode", "status_while_down"), [("open", 200), ("closed", 503)])
def test_redis_dying_mid_run(
    start_gateway: GatewayFactory,
    stub: Stub,
    redis_server: RedisServer,
    mode: str,
    status_while_down: int,
) -> None:
    gw = start_gateway(
        ROUTES, STUB=stub.url, REDIS_URL=redis_server.url, RATE_LIMIT_FAILURE_MODE=mode
    )
    assert gw.get("/per-second").status_code == 200
    redis_server.kill()
    started = time.perf_counter()
    down = [gw.get("/per-second") for _ in range(5)]
    assert time.perf_counter() - started < 2  # a dead Redis costs milliseconds, not timeouts
    assert statuses(down) == {status_while_down: 5}
    assert gw.get("/readyz").status_code == 503
    assert "gateway_ratelimit_store_errors_total 5.0" in gw.admin_get("/metrics").text
    redis_server.start()
    deadline = time.monotonic() + 5
    while gw.get("/readyz").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.1)  # the stores' back-off after a failure
    recovered = gw.get("/per-second")
    assert recovered.status_code == 200
    assert recovered.headers["ratelimit-limit"] == "2"


def test_a_redis_with_a_password_over_tls(
    start_gateway: GatewayFactory, stub: Stub, tmp_path: Path
) -> None:
    """The production story: a password (from a Secret) and `rediss://`."""
    authority = Authority(tmp_path / "certs")
    server_cert = authority.issue("redis")
    redis = RedisServer(
        tmp_path,
        password="a-long-password-0123456789",
        tls=(authority.cert, server_cert.cert, server_cert.key),
    )
    try:
        redis.start()
        assert redis.url.startswith("rediss://:a-long-password-0123456789@")
        one = start_gateway(ROUTES, STUB=stub.url, REDIS_URL=redis.url)
        two = start_gateway(ROUTES, STUB=stub.url, REDIS_URL=redis.url)
        # Cold: both gateways open their TLS connections in one burst (redis-py
        # built an SSL context per connection: ~25 ms each, and these timed out).
        urls = [one.url + "/burst/tls", two.url + "/burst/tls"] * 40
        assert statuses(asyncio.run(hammer(urls))) == {200: 50, 429: 30}
        assert "gateway_ratelimit_store_errors_total 0.0" in one.admin_get("/metrics").text
        wrong = start_gateway(
            ROUTES, STUB=stub.url, REDIS_URL=redis.url.replace("0123456789", "wrong")
        )
        assert wrong.get("/readyz").status_code == 503  # refused: not ready, never crashing
        assert "a-long-password" not in one.process.output() + wrong.process.output()
        for gateway in (one, two, wrong):
            gateway.process.stop()
    finally:
        redis.kill()
