"""The dashboard's data through a real gateway (SPEC 3.14): the page, its one
SSE stream (/events), what the stream says about routes, upstreams, circuits,
requests in flight and reloads, and that it updates at least every 2 s."""

from __future__ import annotations

import itertools
import json
import re
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Gateway, GatewayFactory, Stub, free_port

ROUTES = """
version: 1
upstreams:
  stub: {url: "${STUB}", timeout: 3s}
  dead:
    url: "http://127.0.0.1:${DEAD}"
    timeout: 1s
    circuit_breaker: {failures: 2, cooldown: 60s}
routes:
  - name: fast
    path: /fast
    backends: [{upstream: stub, path: /echo/fast, key: a}]
  - name: slow
    path: /slow
    backends: [{upstream: stub, path: /delay/1500, key: a}]
  - name: broken
    path: /broken
    backends: [{upstream: dead, path: /x, key: a}]
  - name: limited
    path: /limited
    rate_limit: {limit: 1, window: 1m, key: client}
    backends: [{upstream: stub, path: /echo/l, key: a}]
"""


class Events:
    """The admin /events stream, read event by event."""

    def __init__(self, gw: Gateway, **headers: str) -> None:
        self._stream = httpx.stream("GET", gw.admin_url + "/events", headers=headers, timeout=30)
        self.response = self._stream.__enter__()
        self._lines = self.response.iter_lines()

    def next(self) -> tuple[str, dict[str, Any], float]:
        kind, data = "message", ""
        for line in self._lines:
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data += line[6:]
            elif not line and data:
                return kind, json.loads(data), time.monotonic()
        raise AssertionError("the stream ended")

    def until(self, check: Any, timeout: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, doc, _ = self.next()
            if check(doc):
                return doc
        raise AssertionError("the dashboard never showed it")

    def rest(self) -> int:
        """Read until the stream ends; how many lines came before its end."""
        return sum(1 for _ in self._lines)

    def close(self) -> None:
        self._stream.__exit__(None, None, None)


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, stub: Stub) -> Gateway:
    return start_gateway(ROUTES, STUB=stub.url, DEAD=str(free_port()), RELOAD="true")


@pytest.fixture
def events(gw: Gateway) -> Iterator[Events]:
    stream = Events(gw)
    yield stream
    stream.close()


def route(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [r for r in doc["routes"] if r["name"] == name]
    return found


def upstream(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [u for u in doc["upstreams"] if u["name"] == name]
    return found


def test_the_page_is_self_contained(gw: Gateway) -> None:
    page = gw.admin_get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    # Nothing from elsewhere: no src or href that leaves the page.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page.text)
    assert "<script>" in page.text and "<style>" in page.text


def test_the_stream_starts_with_every_route_and_upstream(gw: Gateway, events: Events) -> None:
    assert events.response.headers["content-type"] == "text/event-stream"
    kind, doc, _ = events.next()
    assert kind == "snapshot"
    assert [r["name"] for r in doc["routes"]] == ["fast", "slow", "broken", "limited"]
    fast = route(doc, "fast")
    assert fast["path"] == "/fast" and fast["kind"] == "aggregate"
    assert {"rps", "r4xx", "r5xx", "r429", "p50", "p99", "in_flight", "points"} <= fast.keys()
    assert {u["name"] for u in doc["upstreams"]} == {"stub", "dead"}
    assert doc["config"]["file"] == str(gw.routes_file)
    assert re.fullmatch(r"[0-9a-f]{64}", doc["config"]["digest"])
    assert doc["config"]["loaded_at"] and doc["config"]["routes"] == 4


def test_updates_come_at_least_every_two_seconds(events: Events) -> None:
    events.next()
    times = [events.next()[2] for _ in range(3)]
    assert max(b - a for a, b in itertools.pairwise(times)) < 2.0


def test_rates_latency_and_errors_move_with_traffic(gw: Gateway, events: Events) -> None:
    for _ in range(30):
        assert gw.get("/fast").status_code == 200
    for _ in range(3):
        gw.get("/limited")  # 1 allowed, then 429s
    doc = events.until(lambda d: route(d, "fast")["rps"] > 0 and route(d, "limited")["r429"] > 0)
    fast = route(doc, "fast")
    assert fast["p50"] is not None and fast["p99"] >= fast["p50"] > 0
    limited = route(doc, "limited")
    assert limited["r429"] > 0 and limited["statuses"]["429"] >= 1
    # 429s are a limit doing its work: amber at most, never red (levels.py)
    assert limited["levels"].get("r429") == "warn" and limited["level"] == "warn"
    stub = upstream(doc, "stub")
    assert stub["cps"] > 0 and stub["p50"] is not None and stub["p99"] >= stub["p50"]
    totals = doc["totals"]
    assert totals["rps"] >= fast["rps"] and totals["statuses"]["429"] >= 1
    assert totals["points"][-1][1] >= 0


def test_error_answers_are_listed_with_their_request_ids(gw: Gateway, events: Events) -> None:
    assert gw.get("/nowhere", headers={"X-Request-ID": "dash-err-1"}).status_code == 404
    assert gw.get("/fast", headers={"X-Request-ID": "dash-ok-1"}).status_code == 200
    doc = events.until(lambda d: any(e["request_id"] == "dash-err-1" for e in d["errors"]))
    (entry,) = [e for e in doc["errors"] if e["request_id"] == "dash-err-1"]
    assert entry["status"] == 404 and entry["method"] == "GET" and entry["path"] == "/nowhere"
    assert entry["route"] is None
    assert not [e for e in doc["errors"] if e["request_id"] == "dash-ok-1"]
    unrouted = route(doc, "(no route)")
    assert unrouted["statuses"]["404"] >= 1  # 404 apart from 401, 403...


def test_requests_in_flight_are_shown(gw: Gateway, events: Events) -> None:
    worker = threading.Thread(target=gw.get, args=("/slow",))
    worker.start()
    try:
        events.until(lambda d: route(d, "slow")["in_flight"] == 1)
    finally:
        worker.join()
    events.until(lambda d: route(d, "slow")["in_flight"] == 0)


def test_a_failing_upstream_and_its_open_circuit(gw: Gateway, events: Events) -> None:
    for _ in range(3):
        assert gw.get("/broken").status_code in (502, 503)
    doc = events.until(
        lambda d: upstream(d, "dead")["circuit"] == "open" and route(d, "broken")["r5xx"] > 0
    )
    assert upstream(doc, "dead")["fps"] > 0
    assert upstream(doc, "stub")["circuit"] == "none"  # no breaker configured


def test_reloads_are_listed_and_a_refused_one_carries_its_errors(
    gw: Gateway, events: Events
) -> None:
    original = gw.routes_file.read_text()
    try:
        gw.routes_file.write_text(original + "  - name: bad\n    path: nope\n")
        doc = events.until(lambda d: bool(d["reloads"]))
        (refused,) = doc["reloads"]
        assert refused["result"] == "refused"
        assert any(
            re.match(rf"{re.escape(str(gw.routes_file))}:\d+: ", e) for e in refused["errors"]
        )
        gw.routes_file.write_text(original)  # the edit undone: the serving file again
        doc = events.until(lambda d: d["reloads"][0]["result"] == "restored")
        assert [r["result"] for r in doc["reloads"]] == ["restored", "refused"]
        assert "config on disk matches the serving config again" in gw.process.output()
        gw.routes_file.write_text(original.replace("/echo/fast", "/echo/faster"))
        doc = events.until(lambda d: d["reloads"][0]["result"] == "loaded")
        assert doc["reloads"][0]["routes"] == 4 and doc["reloads"][2]["result"] == "refused"
    finally:
        gw.routes_file.write_text(original)


def test_sigterm_ends_an_open_dashboard_stream(start_gateway: GatewayFactory, stub: Stub) -> None:
    gw = start_gateway(ROUTES, STUB=stub.url, DEAD=str(free_port()))
    stream = Events(gw)
    try:
        assert stream.next()[0] == "snapshot"
        started = time.monotonic()
        gw.process.popen.send_signal(signal.SIGTERM)
        stream.rest()  # returns: the stream ended
        assert time.monotonic() - started < 5
        assert gw.process.popen.wait(15) in (0, -signal.SIGTERM)
    finally:
        stream.close()
