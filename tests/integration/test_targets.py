"""Several targets per upstream through the real gateway process (SPEC 3.17):
balancing by weight, least request and round robin, retries to another target,
passive ejection and return, active health checks, sticky canaries, the
override header, and what /metrics, /config and the dashboard say of them."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Gateway, GatewayFactory, Stub, free_port, stubs_named

ROUTES = """
version: 1
auth:
  keys:
    type: api_key
    keys: [{id: alice, key: alice-key}]
upstreams:
  weighted:
    targets: [{url: "${A}", weight: 3, name: a}, {url: "${B}", weight: 1, name: b}]
  rr:
    targets: [{url: "${A}", weight: 3, name: a}, {url: "${B}", weight: 1, name: b}]
    balance: round_robin
  retried:
    targets: [{url: "http://127.0.0.1:${DEAD}", name: dead}, {url: "${A}", name: a}]
    retries: {attempts: 2, backoff: 10ms}
    outlier: {consecutive_failures: 2}
    balance: round_robin
    timeout: 1s
  ejecting:
    targets: [{url: "${C}", name: c}, {url: "${D}", name: d}]
    outlier: {consecutive_failures: 3, base_ejection: 1s, max_ejection: 2s}
  checked:
    targets: [{url: "${A}", name: a}, {url: "${E}", name: e}]
    health_check: {path: /healthz, interval: 200ms, timeout: 150ms, unhealthy: 2, healthy: 1}
  canary:
    targets: [{url: "${A}", name: stable}, {url: "${B}", name: canary, weight: 0}]
    override_header: X-Canary
  sticky:
    targets: [{url: "${A}", name: a}, {url: "${B}", name: b}]
    sticky: header:X-User
routes:
  - {name: weighted, path: "/weighted/{rest:path}", proxy: {upstream: weighted, path: "/{rest}"}}
  - {name: rr, path: "/rr/{rest:path}", proxy: {upstream: rr, path: "/{rest}"}}
  - {name: retried, path: "/retried/{rest:path}", proxy: {upstream: retried, path: "/{rest}"}}
  - {name: ejecting, path: "/ejecting/{rest:path}", proxy: {upstream: ejecting, path: "/{rest}"}}
  - {name: checked, path: "/checked/{rest:path}", proxy: {upstream: checked, path: "/{rest}"}}
  - name: canary
    path: "/canary/{rest:path}"
    auth: keys
    proxy: {upstream: canary, path: "/{rest}"}
  - {name: canary-public, path: "/public/{rest:path}", proxy: {upstream: canary, path: "/{rest}"}}
  - name: canary-merged
    path: /merged
    auth: keys
    backends: [{upstream: canary, path: /echo/m, key: seen, forward_headers: [X-Canary]}]
  - name: sticky
    path: /sticky
    backends: [{upstream: sticky, path: /echo/s, key: seen, allow: [headers]}]
"""


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Stub]]:
    yield from stubs_named(tmp_path_factory, "ABCDE")


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, stubs: dict[str, Stub]) -> Gateway:
    urls = {name: stub.url for name, stub in stubs.items()}
    return start_gateway(ROUTES, DEAD=str(free_port()), **urls)


def headers_of(echo: dict[str, Any]) -> dict[str, str]:
    return dict(echo["headers"])


def port_of(response: httpx.Response) -> int:
    assert response.status_code == 200, response.text
    return int(headers_of(response.json())["host"].rsplit(":", 1)[1])


def name_of_echo(stubs: dict[str, Stub], echo: dict[str, Any]) -> str:
    port = int(headers_of(echo)["host"].rsplit(":", 1)[1])
    return next(name for name, stub in stubs.items() if stub.process.port == port)


def names(stubs: dict[str, Stub]) -> Callable[[httpx.Response], str]:
    by_port = {stub.process.port: name for name, stub in stubs.items()}
    return lambda response: by_port[port_of(response)]


def metric(gw: Gateway, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in gw.admin_get("/metrics").text.splitlines():
        if line.startswith(name + "{"):
            found = ",".join(sorted(line[line.index("{") + 1 : line.index("}")].split(",")))
            if found == wanted:
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name}{{{wanted}}}")


def eventually(check: Callable[[], bool], within: float = 5.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if check():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"not within {within} s")


def test_least_request_sends_each_target_its_weights_share(
    gw: Gateway, stubs: dict[str, Stub]
) -> None:
    name = names(stubs)
    counts = Counter(name(gw.get("/weighted/echo/x")) for _ in range(400))
    assert 0.66 < counts["A"] / 400 < 0.84, counts
    assert metric(gw, "gateway_upstream_target_healthy", upstream="weighted", target="b") == 1
    successes = metric(
        gw,
        "gateway_upstream_target_requests_total",
        upstream="weighted",
        target="a",
        outcome="success",
    )
    assert successes == counts["A"]


def test_round_robin_follows_the_weights_exactly(gw: Gateway, stubs: dict[str, Stub]) -> None:
    name = names(stubs)
    counts = Counter(name(gw.get("/rr/echo/x")) for _ in range(40))
    assert counts == Counter({"A": 30, "B": 10})


def test_a_retry_goes_to_another_target(gw: Gateway, stubs: dict[str, Stub]) -> None:
    name = names(stubs)
    answers = [gw.get("/retried/echo/r") for _ in range(20)]
    # Each call to the dead target was retried on A, until it was ejected: the
    # retry budget (3 plus 10% of requests) covers the two retries that took.
    assert all(name(r) == "A" for r in answers)
    failures = metric(
        gw,
        "gateway_upstream_target_requests_total",
        upstream="retried",
        target="dead",
        outcome="failure",
    )
    assert failures == 2
    assert metric(gw, "gateway_upstream_target_healthy", upstream="retried", target="dead") == 0


def test_failing_target_is_ejected_and_comes_back(gw: Gateway, stubs: dict[str, Stub]) -> None:
    name = names(stubs)
    httpx.get(stubs["C"].url + "/_down?on=1")
    try:
        statuses = Counter(gw.get("/ejecting/echo/e").status_code for _ in range(40))
        # Each 503 is the failing target's own: 3 in a row eject it.
        assert statuses[503] == 3 and statuses[200] == 37, statuses
        assert metric(gw, "gateway_upstream_target_healthy", upstream="ejecting", target="c") == 0
        config = gw.admin_get("/config").json()["upstreams"]["ejecting"]["target_state"]
        assert {t["name"]: t["state"] for t in config} == {"c": "ejected", "d": "healthy"}
        log = gw.process.output()
        assert "upstream ejecting: target c ejected for 1 s after 3 consecutive failures" in log
    finally:
        httpx.get(stubs["C"].url + "/_down?on=0")
    eventually(
        lambda: metric(gw, "gateway_upstream_target_healthy", upstream="ejecting", target="c") == 1
    )
    seen = Counter(name(gw.get("/ejecting/echo/e")) for _ in range(40))
    assert seen["C"] > 5, seen  # back in the rotation


def test_active_checks_take_a_target_out_and_back(gw: Gateway, stubs: dict[str, Stub]) -> None:
    name = names(stubs)
    httpx.get(stubs["E"].url + "/_sick?on=1")
    try:
        eventually(
            lambda: (
                metric(gw, "gateway_upstream_target_healthy", upstream="checked", target="e") == 0
            )
        )
        assert {name(gw.get("/checked/echo/h")) for _ in range(30)} == {"A"}
    finally:
        httpx.get(stubs["E"].url + "/_sick?on=0")
    eventually(
        lambda: metric(gw, "gateway_upstream_target_healthy", upstream="checked", target="e") == 1
    )
    assert "E" in {name(gw.get("/checked/echo/h")) for _ in range(30)}
    assert stubs["E"].stats()["paths"].get("/healthz", 0) >= 3


def test_the_override_header_names_a_target_where_auth_passed(
    gw: Gateway, stubs: dict[str, Stub]
) -> None:
    name = names(stubs)
    key = {"X-API-Key": "alice-key"}
    assert {name(gw.get("/canary/echo/c", headers=key)) for _ in range(10)} == {"A"}
    canary = [gw.get("/canary/echo/c", headers={**key, "X-Canary": "canary"}) for _ in range(10)]
    assert {name(r) for r in canary} == {"B"}
    assert "x-canary" not in headers_of(canary[0].json())  # for the gateway only
    assert gw.get("/canary/echo/c", headers={"X-Canary": "canary"}).status_code == 401
    merged = gw.get("/merged", headers={**key, "X-Canary": "canary"}).json()["seen"]
    assert name_of_echo(stubs, merged) == "B"  # an aggregate backend steered too
    assert "x-canary" not in headers_of(merged)  # even where forward_headers names it
    public = [gw.get("/public/echo/c", headers={"X-Canary": "canary"}) for _ in range(10)]
    assert {name(r) for r in public} == {"A"}  # no auth on the route: the header is ignored
    assert "x-canary" not in headers_of(public[0].json())


def test_sticky_clients_stay_on_their_target(gw: Gateway, stubs: dict[str, Stub]) -> None:
    by_port = {stub.process.port: name for name, stub in stubs.items()}

    def target_of(user: str) -> str:
        answer = gw.get("/sticky", headers={"X-User": user})
        host = headers_of(answer.json()["seen"])["host"]
        return by_port[int(host.rsplit(":", 1)[1])]

    first = {f"u{i}": target_of(f"u{i}") for i in range(60)}
    assert set(first.values()) == {"A", "B"}
    assert all(target_of(user) == where for user, where in first.items())


def test_the_dashboard_lists_targets_and_their_state(gw: Gateway) -> None:
    from tests.integration.test_dashboard import Events, upstream

    stream = Events(gw)
    try:
        _, document, _ = stream.next()
    finally:
        stream.close()
    targets = {t["name"]: t for t in upstream(document, "weighted")["targets"]}
    assert targets["a"]["weight"] == 3 and targets["a"]["state"] == "healthy"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", targets["b"]["url"])


RELOADED = """
version: 1
upstreams:
  sticky:
    targets: [{url: "${A}", name: a, weight: 1}, {url: "${B}", name: b, weight: %d}]
    sticky: header:X-User
  ejecting:
    targets: [{url: "http://127.0.0.1:${DEAD}", name: dead, weight: %d}, {url: "${A}", name: a}]
    outlier: {consecutive_failures: 2, base_ejection: 5m}
    retries: {attempts: 2, backoff: 10ms}
    balance: round_robin
routes:
  - {name: sticky, path: "/sticky/{rest:path}", proxy: {upstream: sticky, path: "/{rest}"}}
  - {name: ejecting, path: "/ejecting/{rest:path}", proxy: {upstream: ejecting, path: "/{rest}"}}
"""


def test_a_weight_change_by_reload_moves_only_the_clients_it_must_and_keeps_health(
    start_gateway: GatewayFactory, stubs: dict[str, Stub]
) -> None:
    urls = {"A": stubs["A"].url, "B": stubs["B"].url, "DEAD": str(free_port())}
    gw = start_gateway(RELOADED % (1, 1), RELOAD="true", **urls)
    name = names(stubs)
    users = [f"user-{i}" for i in range(200)]

    def placed() -> dict[str, str]:
        return {u: name(gw.get("/sticky/echo/s", headers={"X-User": u})) for u in users}

    before = placed()
    for _ in range(4):  # round robin: dead, a, dead, a: two failures eject it
        assert gw.get("/ejecting/echo/e").status_code == 200

    def states() -> dict[str, dict[str, dict[str, Any]]]:
        upstreams = gw.admin_get("/config").json()["upstreams"]
        return {n: {t["name"]: t for t in upstreams[n]["target_state"]} for n in upstreams}

    assert states()["ejecting"]["dead"]["state"] == "ejected"
    gw.routes_file.write_text(RELOADED % (3, 2))
    eventually(lambda: states()["sticky"]["b"]["weight"] == 3)
    assert states()["ejecting"]["dead"]["state"] == "ejected"  # health kept across the reload
    after = placed()
    moved = [u for u in users if before[u] != after[u]]
    assert all(before[u] == "A" and after[u] == "B" for u in moved)  # only towards b
    assert 0.12 < len(moved) / len(users) < 0.38  # a quarter must move (1:1 to 1:3)
