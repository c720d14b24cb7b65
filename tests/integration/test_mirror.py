"""Mirroring and shadow comparison through the real gateway process (SPEC 3.17):
the mirror gets the calls (with X-Gateway-Mirror: 1) after the client's answer,
never delays it, drops past max_in_flight, mirrors only listed methods, and
with compare: true counts matches and mismatches and lists them on /mirror."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.conftest import Gateway, GatewayFactory, Stub, free_port, stubs_named
from tests.integration.test_targets import eventually, metric

ROUTES = """
version: 1
upstreams:
  primary: {url: "${P}"}
  shadow: {url: "${M}"}
  slow-shadow: {url: "${M}/delay/1500", timeout: 5s}
  huge-shadow: {url: "${M}/huge", timeout: 10s}
  dead: {url: "http://127.0.0.1:${DEAD}", timeout: 1s}
routes:
  - name: same
    path: "/same/{rest:path}"
    methods: [GET, POST, DELETE]
    proxy: {upstream: primary, path: "/{rest}"}
    mirror: {upstream: shadow, compare: true, ignore: [headers], methods: [GET, POST]}
  - name: differs
    path: "/differs/{rest:path}"
    proxy: {upstream: primary, path: "/{rest}"}
    mirror: {upstream: shadow, compare: true}
  - name: slow
    path: "/slow/{rest:path}"
    proxy: {upstream: primary, path: "/{rest}"}
    mirror: {upstream: slow-shadow, max_in_flight: 2}
  - name: huge
    path: "/huge/{rest:path}"
    proxy: {upstream: primary, path: "/{rest}"}
    mirror: {upstream: huge-shadow, compare: true}
  - name: large
    path: "/large/{rest:path}"
    proxy: {upstream: primary, path: "/{rest}"}
    mirror: {upstream: shadow, compare: true}
  - name: small-bodies
    path: "/small/{rest:path}"
    methods: [POST]
    proxy: {upstream: primary, path: "/{rest}"}
    mirror: {upstream: shadow, methods: [POST], max_body_size: 16B}
  - name: failing
    path: "/failing/{rest:path}"
    proxy: {upstream: dead, path: "/{rest}"}
    mirror: {upstream: shadow, compare: true}
  - name: half
    path: "/half/{rest:path}"
    proxy: {upstream: primary, path: "/{rest}"}
    mirror: {upstream: shadow, percent: 50}
  - name: merged
    path: /merged/{id}
    backends:
      - {upstream: primary, path: "/users/{id}", key: user}
      - {upstream: primary, path: "/accounts/{id}", key: account}
    mirror: {upstream: shadow, compare: true}
"""


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Stub]]:
    yield from stubs_named(tmp_path_factory, "PM")


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, stubs: dict[str, Stub]) -> Gateway:
    return start_gateway(ROUTES, P=stubs["P"].url, M=stubs["M"].url, DEAD=str(free_port()))


def count(gw: Gateway, route: str, result: str) -> float:
    try:
        return metric(gw, "gateway_mirror_total", route=route, result=result)
    except AssertionError:
        return 0.0


def mirrored(stub: Stub, path: str) -> int:
    return int(stub.stats()["paths"].get(path, 0))


def test_the_mirror_gets_the_same_request_and_the_answers_match(
    gw: Gateway, stubs: dict[str, Stub]
) -> None:
    answer = gw.get("/same/echo/a?x=1")
    assert answer.status_code == 200 and "x-gateway-mirror" not in dict(answer.json()["headers"])
    eventually(lambda: count(gw, "same", "match") == 1)
    assert mirrored(stubs["M"], "/echo/a") == 1
    posted = gw.request("POST", "/same/echo/b", content=b'{"n": 1}')
    assert posted.status_code == 200
    eventually(lambda: count(gw, "same", "match") == 2)  # the body went along: same echo


def test_a_clients_own_mirror_header_never_reaches_an_upstream(gw: Gateway) -> None:
    forged = gw.get("/same/echo/forged", headers={"X-Gateway-Mirror": "1"})
    assert "x-gateway-mirror" not in dict(forged.json()["headers"])  # the primary's
    eventually(lambda: count(gw, "same", "match") == 3)  # and the mirror's echo matched it


def test_a_method_not_listed_is_not_mirrored(gw: Gateway, stubs: dict[str, Stub]) -> None:
    assert gw.request("DELETE", "/same/echo/deleted").status_code == 200
    time.sleep(0.3)
    assert mirrored(stubs["M"], "/echo/deleted") == 0


def test_mismatches_are_counted_and_listed_with_the_paths_that_differ(gw: Gateway) -> None:
    assert gw.get("/differs/echo/d").status_code == 200
    eventually(lambda: count(gw, "differs", "mismatch") == 1)
    document = gw.admin_get("/mirror").json()
    (entry,) = [m for m in document["mismatches"] if m["route"] == "differs"]
    assert entry["request"] == "GET /echo/d"
    paths = {d["path"] for d in entry["differences"]}
    assert "headers.0.1" in paths  # the Host each upstream saw
    host = next(d for d in entry["differences"] if d["path"] == "headers.0.1")
    assert host["primary"] != host["mirror"]
    assert document["rows"] and document["columns"][0] == "at"


def test_a_hanging_mirror_never_delays_the_client_and_drops_are_counted(gw: Gateway) -> None:
    started = time.monotonic()
    for _ in range(10):
        assert gw.get("/slow/echo/s").status_code == 200
    assert time.monotonic() - started < 1.0  # ten answers while the mirror takes 1.5 s each
    assert count(gw, "slow", "dropped") == 8  # two in flight at a time
    eventually(lambda: count(gw, "slow", "sent") == 2)


def test_percent_mirrors_about_that_share(gw: Gateway, stubs: dict[str, Stub]) -> None:
    with httpx.Client(base_url=gw.url) as client:
        for _ in range(200):
            client.get("/half/users/h")
    eventually(lambda: count(gw, "half", "sent") > 0)
    time.sleep(0.3)
    assert 60 <= mirrored(stubs["M"], "/users/h") <= 140


def test_aggregate_routes_mirror_each_backend_call(gw: Gateway, stubs: dict[str, Stub]) -> None:
    assert gw.get("/merged/7").json()["user"]["id"] == "7"
    eventually(lambda: count(gw, "merged", "match") == 2)
    assert mirrored(stubs["M"], "/users/7") == 1 and mirrored(stubs["M"], "/accounts/7") == 1


def test_a_mirror_that_answers_an_error_is_a_mismatch(gw: Gateway, stubs: dict[str, Stub]) -> None:
    httpx.get(stubs["M"].url + "/_down?on=1")
    try:
        assert gw.get("/merged/8").status_code == 200  # the client's answer is the primary's
        eventually(lambda: count(gw, "merged", "mismatch") == 2)
    finally:
        httpx.get(stubs["M"].url + "/_down?on=0")
    document = gw.admin_get("/mirror").json()
    statuses = [
        d for m in document["mismatches"] if m["route"] == "merged" for d in m["differences"]
    ]
    assert {"path": "(status)", "primary": 200, "mirror": 503} in statuses


def test_a_mirror_answering_10_mb_changes_nothing_for_the_client(gw: Gateway) -> None:
    started = time.monotonic()
    answer = gw.get("/huge/users/5")
    assert answer.status_code == 200 and answer.json()["id"] == "5"
    assert time.monotonic() - started < 0.5
    # Read to 1 MiB, then closed: too large to compare, so compared by status.
    eventually(lambda: count(gw, "huge", "match") == 1)


def test_large_answers_are_compared_too(gw: Gateway) -> None:
    """Two 300 KB answers: compared off the loop, and equal."""
    assert len(gw.get("/large/bigjson/300000").content) > 300_000
    eventually(lambda: count(gw, "large", "match") == 1)


def test_a_primary_that_failed_is_still_mirrored_and_compared(gw: Gateway) -> None:
    assert gw.get("/failing/users/9").status_code == 502  # the client's answer: the primary's
    eventually(lambda: count(gw, "failing", "mismatch") == 1)
    (entry,) = [m for m in gw.admin_get("/mirror").json()["mismatches"] if m["route"] == "failing"]
    assert {"path": "(status)", "primary": None, "mirror": 200} in entry["differences"]


def test_a_body_past_max_body_size_is_not_mirrored(gw: Gateway, stubs: dict[str, Stub]) -> None:
    assert gw.request("POST", "/small/echo/short", content=b"0123456789").status_code == 200
    assert gw.request("POST", "/small/echo/long", content=b"x" * 17).status_code == 200
    eventually(lambda: mirrored(stubs["M"], "/echo/short") == 1)
    time.sleep(0.3)
    assert mirrored(stubs["M"], "/echo/long") == 0
    assert count(gw, "small-bodies", "sent") == 1
