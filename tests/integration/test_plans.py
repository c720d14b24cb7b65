"""Plans and quotas through real gateways (SPEC 3.16): plans named by API keys,
JWT claims and settings.default_plan; 403 plan-forbidden; per-consumer rate
limits across a plan's routes; calendar quotas with X-Quota-* headers and
429 quota-exceeded; exact across two replicas sharing Redis and kept across
a restart and a reload; GET /consumers."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import jwt
import pytest

from tests.conftest import RedisServer
from tests.integration.conftest import Gateway, GatewayFactory
from tests.integration.test_ratelimit import hammer, statuses
from tests.processes import Stub

SECRET = "plans-test-secret-of-at-least-32-bytes!"
ROUTES = """
version: 1
settings:
  default_plan: free
upstreams:
  stub: {{url: "{url}"}}
plans:
  free:
    rate_limit: {{limit: 4, window: 1m}}
    quota: {{limit: {free_quota}, period: day}}
    routes: [catalog, orders]
  pro:
    quota: {{limit: 1000, period: month}}
  unlimited: {{}}
auth:
  keys:
    type: api_key
    keys:
      - {{id: acme, key: acme-key, plan: pro}}
      - {{id: bob, key: bob-key, plan: free}}
      - {{id: carl, key: carl-key}}
      - {{id: dave, key: dave-key, plan: platinum}}
      - {{id: eve, key: eve-key, plan: unlimited}}
  tokens:
    type: jwt
    algorithms: [HS256]
    secret: "{secret}"
    plan_claim: tier
routes:
  - name: catalog
    path: /catalog
    auth: [keys, tokens]
    proxy: {{upstream: stub, path: /echo/catalog}}
  - name: orders
    path: /orders
    auth: keys
    rate_limit: {{limit: 100, window: 1m}}
    proxy: {{upstream: stub, path: /echo/orders}}
  - name: admin
    path: /admin
    auth: keys
    proxy: {{upstream: stub, path: /echo/admin}}
  - name: public
    path: /public
    proxy: {{upstream: stub, path: /echo/public}}
"""


def routes(stub: Stub, free_quota: int = 1000) -> str:
    return ROUTES.format(url=stub.url, secret=SECRET, free_quota=free_quota)


def key(name: str) -> dict[str, str]:
    return {"X-API-Key": f"{name}-key"}


def token(sub: str, **claims: object) -> dict[str, str]:
    payload = {"sub": sub, "exp": int(time.time()) + 600, **claims}
    return {"Authorization": "Bearer " + jwt.encode(payload, SECRET, algorithm="HS256")}


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, stub: Stub) -> Gateway:
    return start_gateway(routes(stub))


def test_a_plan_without_the_route_is_forbidden(gw: Gateway) -> None:
    assert gw.get("/admin", headers=key("acme")).status_code == 200  # pro: every route
    refused = gw.get("/admin", headers=key("bob"))  # free: catalog and orders only
    assert refused.status_code == 403
    assert refused.json()["type"] == "urn:gateway:problem:plan-forbidden"
    assert gw.get("/admin", headers=key("carl")).status_code == 403  # default_plan: free


def test_an_unknown_plan_is_refused_never_unlimited(gw: Gateway) -> None:
    refused = gw.get("/catalog", headers=key("dave"))
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("plan-forbidden")
    assert gw.get("/catalog", headers=token("t1", tier="platinum")).status_code == 403
    assert gw.get("/catalog", headers=token("t2", tier=7)).status_code == 403


def test_a_jwt_claim_names_the_plan(gw: Gateway) -> None:
    answer = gw.get("/catalog", headers=token("t3", tier="pro"))
    assert answer.status_code == 200
    assert answer.headers["x-quota-limit"] == "1000"
    default = gw.get("/catalog", headers=token("t4"))  # no claim: default_plan free
    assert default.headers["x-quota-limit"] == "1000"
    assert "ratelimit-limit" in default.headers  # free's rate limit


def test_public_routes_have_no_consumer(gw: Gateway) -> None:
    answer = gw.get("/public")
    assert answer.status_code == 200
    assert "x-quota-limit" not in answer.headers


def test_a_plan_rate_limit_spans_the_plans_routes(
    start_gateway: GatewayFactory, stub: Stub
) -> None:
    gw = start_gateway(routes(stub))
    answers = [gw.get(path, headers=key("bob")) for path in ["/catalog", "/orders"] * 3]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429, 429]  # 4 a minute
    orders = answers[1]  # the route's own limit (100) and the plan's (4, 2 left): one set
    assert orders.headers["ratelimit-limit"] == "4"
    assert orders.headers["ratelimit-remaining"] == "2"
    assert gw.get("/catalog", headers=key("carl")).status_code == 200  # its own bucket
    listed = {c["consumer"]: c for c in gw.admin_get("/consumers").json()["consumers"]}
    assert listed["keys/bob"]["plan"] == "free"
    assert listed["keys/bob"]["rate_limited"] == 2
    assert listed["keys/bob"]["admitted"] == 4


def test_a_quota_counts_to_its_limit_then_429(start_gateway: GatewayFactory, stub: Stub) -> None:
    gw = start_gateway(routes(stub, free_quota=3))
    answers = [gw.get("/catalog", headers=key("carl")) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-quota-remaining"] for a in answers] == ["2", "1", "0", "0"]
    refused = answers[-1]
    assert refused.json()["type"] == "urn:gateway:problem:quota-exceeded"
    assert refused.json()["detail"] == "the daily quota of 3 requests is used up"
    reset = int(refused.headers["x-quota-reset"])
    assert 0 < reset <= 86400
    assert int(refused.headers["retry-after"]) == reset
    consumers = gw.admin_get("/consumers").json()["consumers"]
    carl = next(c for c in consumers if c["consumer"] == "keys/carl")
    assert carl["quota"]["used"] == 3
    assert carl["quota"]["limit"] == 3
    assert carl["quota_refused"] == 1
    assert gw.get("/catalog", headers=key("bob")).status_code == 200  # another consumer


def pro_quota(stub: Stub, limit: int) -> str:
    return routes(stub).replace(
        "{limit: 1000, period: month}", f"{{limit: {limit}, period: month}}"
    )


def test_a_reload_keeps_counts(start_gateway: GatewayFactory, stub: Stub) -> None:
    gw = start_gateway(pro_quota(stub, 3), RELOAD="true")
    for _ in range(2):
        assert gw.get("/admin", headers=key("acme")).status_code == 200
    gw.routes_file.write_text(pro_quota(stub, 4))  # a raised limit, same counts
    deadline = time.monotonic() + 10
    while (answer := gw.get("/admin", headers=key("acme"))).headers["x-quota-limit"] != "4":
        assert time.monotonic() < deadline, "the reload did not land"
        time.sleep(0.2)
    used = 4 - int(answer.headers["x-quota-remaining"])
    assert used >= 3  # the two before the reload still count
    while used < 4:
        assert gw.get("/admin", headers=key("acme")).status_code == 200
        used += 1
    assert gw.get("/admin", headers=key("acme")).status_code == 429


def test_replicas_share_quotas_and_a_restart_keeps_them(
    start_gateway: GatewayFactory, stub: Stub, redis_server: RedisServer
) -> None:
    text = routes(stub)
    one = start_gateway(text, REDIS_URL=redis_server.url)
    two = start_gateway(text, REDIS_URL=redis_server.url)
    urls = [one.url + "/catalog", two.url + "/catalog"] * 40
    # 80 requests of one pro consumer (a quota, no rate limit) through both replicas.
    answers = asyncio.run(hammer(urls, headers=token("shared", tier="pro")))
    assert statuses(answers) == {200: 80}
    used = max(1000 - int(a.headers["x-quota-remaining"]) for a in answers)
    assert used == 80  # every admitted request counted once, across both replicas
    one.process.stop()
    three = start_gateway(text, REDIS_URL=redis_server.url)
    answer = three.get("/catalog", headers=token("shared", tier="pro"))
    assert answer.headers["x-quota-remaining"] == str(1000 - 81)  # kept across the restart


def test_replicas_refuse_past_the_quota_exactly(
    start_gateway: GatewayFactory, stub: Stub, redis_server: RedisServer
) -> None:
    text = routes(stub).replace(
        "quota: {limit: 1000, period: month}", "quota: {limit: 30, period: month}"
    )
    one = start_gateway(text, REDIS_URL=redis_server.url)
    two = start_gateway(text, REDIS_URL=redis_server.url)
    urls = [one.url + "/admin", two.url + "/admin"] * 50
    answers = asyncio.run(hammer(urls, headers=key("acme")))
    assert statuses(answers) == {200: 30, 429: 70}
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.json()["type"].endswith("quota-exceeded")
    assert "retry-after" in refused.headers


def test_the_dashboard_lists_top_consumers(gw: Gateway) -> None:
    gw.get("/catalog", headers=key("acme"))
    with httpx.stream("GET", gw.admin_url + "/events", timeout=10) as events:
        for line in events.iter_lines():
            if line.startswith("data:"):
                document = json.loads(line[5:])
                break
    panel = next(p for p in document["panels"] if p["path"] == "/consumers")
    assert panel["title"] == "Top consumers"
    assert any(row[0] == "keys/acme" and row[1] == "pro" for row in panel["rows"])


@pytest.mark.parametrize(("mode", "status"), [("open", 200), ("closed", 503)])
def test_quotas_follow_the_failure_mode_while_redis_is_down(
    start_gateway: GatewayFactory, stub: Stub, redis_server: RedisServer, mode: str, status: int
) -> None:
    gw = start_gateway(routes(stub), REDIS_URL=redis_server.url, RATE_LIMIT_FAILURE_MODE=mode)
    assert gw.get("/admin", headers=key("acme")).headers["x-quota-remaining"] == "999"
    redis_server.kill()
    answer = gw.get("/admin", headers=key("acme"))
    assert answer.status_code == status
    assert "x-quota-remaining" not in answer.headers  # nothing was counted
