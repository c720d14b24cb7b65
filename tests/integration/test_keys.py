"""What rate-limit buckets and cache entries are keyed by (SPEC 3.10), through
the real gateway process: identities with their provider, cache keys as exact
as the upstream requests, and buckets forgotten once refilled."""

from __future__ import annotations

import re
import time

import jwt
import pytest

from tests.integration.conftest import Gateway, GatewayFactory, Stub

SECRET = "keys-test-secret-0123456789abcdefghij"
ROUTES = """
version: 1
upstreams:
  stub: {url: "${STUB}"}
auth:
  keys:
    type: api_key
    keys: [{id: alice, key: alice-key-0001}]
  sso:
    type: jwt
    algorithms: [HS256]
    secret: "${SECRET}"
routes:
  - name: limited
    path: /limited
    auth: [keys, sso]
    rate_limit: {limit: 1, window: 1h, key: client}
    backends: [{upstream: stub, path: /echo/limited}]
  - name: cached
    path: /cached
    auth: [keys, sso]
    cache: {ttl: 1m}
    backends: [{upstream: stub, path: /echo/cached}]
  - name: docs
    path: /docs/{page:path}
    cache: {ttl: 1m}
    backends: [{upstream: stub, path: "/echo/docs/{page}", key: doc}]
  - name: per-tenant
    path: /tenants
    rate_limit: {limit: 1, window: 2s, key: "header:X-Tenant"}
    backends: [{upstream: stub, path: /echo/t}]
"""


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, stub: Stub) -> Gateway:
    return start_gateway(ROUTES, STUB=stub.url, SECRET=SECRET)


def api_key() -> dict[str, str]:
    return {"X-API-Key": "alice-key-0001"}


def bearer() -> dict[str, str]:
    token = jwt.encode({"sub": "alice", "exp": int(time.time()) + 300}, SECRET, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


def test_the_same_name_from_two_providers_never_shares_a_bucket(gw: Gateway) -> None:
    assert gw.get("/limited", headers=api_key()).status_code == 200
    assert (
        gw.get("/limited", headers=bearer()).status_code == 200
    )  # JWT sub "alice": another bucket
    assert gw.get("/limited", headers=api_key()).status_code == 429
    assert gw.get("/limited", headers=bearer()).status_code == 429


def test_the_same_name_from_two_providers_never_shares_a_cache_entry(gw: Gateway) -> None:
    assert gw.get("/cached", headers=api_key()).headers["x-cache"] == "MISS"
    assert gw.get("/cached", headers=api_key()).headers["x-cache"] == "HIT"
    assert gw.get("/cached", headers=bearer()).headers["x-cache"] == "MISS"


def test_an_encoded_slash_is_another_entry(gw: Gateway, stub: Stub) -> None:
    encoded = gw.get("/docs/x%2Fy/z")
    plain = gw.get("/docs/x/y/z")
    assert (encoded.headers["x-cache"], plain.headers["x-cache"]) == ("MISS", "MISS")
    assert encoded.json()["doc"]["raw_path"] == "/echo/docs/x%2Fy/z"
    assert plain.json()["doc"]["raw_path"] == "/echo/docs/x/y/z"
    assert gw.get("/docs/x%2Fy/z").json()["doc"]["raw_path"] == "/echo/docs/x%2Fy/z"  # a HIT


def test_the_host_the_backends_are_told_is_part_of_the_key(gw: Gateway) -> None:
    first = gw.get("/docs/host", headers={"Host": "a.example"})
    other = gw.get("/docs/host", headers={"Host": "b.example"})
    assert (first.headers["x-cache"], other.headers["x-cache"]) == ("MISS", "MISS")
    sent = dict(other.json()["doc"]["headers"])
    assert sent["x-forwarded-host"] == "b.example"
    assert gw.get("/docs/host", headers={"Host": "a.example"}).headers["x-cache"] == "HIT"


def buckets(gw: Gateway) -> float:
    found = re.search(
        r"^gateway_ratelimit_buckets ([0-9.e+]+)$", gw.admin_get("/metrics").text, re.M
    )
    assert found is not None
    return float(found.group(1))


def test_buckets_clients_invent_are_forgotten_once_refilled(gw: Gateway) -> None:
    before = buckets(gw)
    assert gw.get("/tenants", headers={"X-Tenant": "tenant-0"}).status_code == 200
    assert gw.get("/tenants", headers={"X-Tenant": "tenant-0"}).status_code == 429  # exact
    for i in range(1, 300):
        assert gw.get("/tenants", headers={"X-Tenant": f"tenant-{i}"}).status_code == 200
    assert buckets(gw) >= before + 300
    # 2 s to refill, up to a second more to the wheel's slot, then housekeeping
    deadline = time.monotonic() + 8
    while buckets(gw) > before + 1 and time.monotonic() < deadline:
        time.sleep(0.25)
    assert buckets(gw) <= before + 1
    assert gw.get("/tenants", headers={"X-Tenant": "tenant-0"}).status_code == 200
