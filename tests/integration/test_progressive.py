"""Progressive aggregation (`stream: true`, SPEC 3.11) through a real gateway
process: records as backends finish, both formats, failures, and the promise
that merging the parts gives the plain answer."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Gateway, GatewayFactory, Stub

ROUTES = """
version: 1
upstreams:
  stub: {url: "${STUB}", timeout: 2s}
auth:
  keys:
    type: api_key
    keys: [{id: alice, key: alice-key}]
routes:
  - name: overview
    path: /overview/{id}
    stream: true
    timeout: 3s
    backends:
      - {upstream: stub, path: "/delay/400/slow", key: slow, allow: [method, path]}
      - {upstream: stub, path: "/users/{id}"}
      - {upstream: stub, path: "/delay/20/fast", key: fast, allow: [method, query]}
      - {upstream: stub, path: /status/500, key: broken, required: false}
      - {upstream: stub, path: "/delay/5000/late", key: late, required: false}
  - name: account
    path: /account/{id}
    stream: true
    timeout: 2s
    backends:
      - {upstream: stub, path: "/users/{id}", key: user}
      - {upstream: stub, path: "/echo/account/{user.account_id}", key: account, allow: [path]}
  - name: doomed
    path: /doomed
    stream: true
    backends:
      - {upstream: stub, path: /delay/10/ok, key: ok, allow: [path]}
      - {upstream: stub, path: /status/503, query: {ms: "150"}, key: must}
      - {upstream: stub, path: /delay/1000/never, key: never, required: false}
  - name: cached-stream
    path: /cached-stream
    stream: true
    cache: {ttl: 60s}
    backends:
      - {upstream: stub, path: /echo/cached-stream, key: echo, allow: [path]}
  - name: private-stream
    path: /private-stream
    stream: true
    auth: keys
    backends:
      - {upstream: stub, path: /echo/private, key: echo, allow: [path]}
  - name: plain-only
    path: /plain-only
    backends:
      - {upstream: stub, path: /echo/plain, key: echo, allow: [path]}
"""

SSE = "text/event-stream"
NDJSON = "application/x-ndjson"


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, stub: Stub) -> Gateway:
    return start_gateway(ROUTES, STUB=stub.url)


def read_records(
    gw: Gateway, path: str, accept: str, **headers: str
) -> tuple[httpx.Response, list[tuple[dict[str, Any], float]]]:
    """Every record with the time it arrived (seconds since the request was sent)."""
    records: list[tuple[dict[str, Any], float]] = []
    started = time.monotonic()
    with httpx.stream(
        "GET", gw.url + path, headers={"Accept": accept, **headers}, timeout=10
    ) as response:
        if response.headers["content-type"] == SSE:
            event = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    assert event is not None
                    data = json.loads(line[6:])
                    assert "event" not in data
                    records.append(({"event": event, **data}, time.monotonic() - started))
                    event = None
        elif response.headers["content-type"] == NDJSON:
            for line in response.iter_lines():
                records.append((json.loads(line), time.monotonic() - started))
        else:
            response.read()
    return response, records


def merged(records: list[tuple[dict[str, Any], float]], route_order: list[str]) -> dict[str, Any]:
    """The ok parts merged in route order, as the contract says a client may."""
    parts = {r["name"]: r for r, _ in records if r["event"] == "part" and r["status"] == "ok"}
    body: dict[str, Any] = {}
    for name in route_order:
        if name in parts:
            part = parts[name]
            if part["key"] is None:
                body.update(part["body"])
            else:
                body[part["key"]] = part["body"]
    return body


OVERVIEW_ORDER = ["slow", "stub", "fast", "broken", "late"]


@pytest.mark.parametrize("accept", [SSE, NDJSON])
def test_records_arrive_as_backends_finish_and_merge_to_the_plain_answer(
    gw: Gateway, accept: str
) -> None:
    response, records = read_records(gw, "/overview/7", accept)
    assert response.status_code == 200
    assert response.headers["content-type"] == accept
    assert response.headers["cache-control"] == "no-cache"
    assert ("x-accel-buffering" in response.headers) == (accept == SSE)
    events = [(r["event"], r.get("name"), r.get("status")) for r, _ in records]
    # in the order they finished: the failed optional and the fast ones first,
    # the 400 ms one after, the one past the route deadline last, then "done"
    assert set(events[:3]) == {
        ("part", "stub", "ok"),
        ("part", "fast", "ok"),
        ("part", "broken", "failed"),
    }
    assert events[3:] == [
        ("part", "slow", "ok"),
        ("part", "late", "failed"),
        ("done", None, None),
    ]
    by_name = {r.get("name"): r for r, _ in records}
    assert by_name["broken"] == {
        "event": "part",
        "name": "broken",
        "key": "broken",
        "status": "failed",
        "error": "status",
    }
    assert by_name["late"]["error"] == "timeout"
    assert by_name["stub"]["key"] is None
    assert records[-1][0] == {"event": "done", "completed": False}

    plain = gw.get("/overview/7")
    assert plain.status_code == 200
    assert plain.headers["content-type"] == "application/json"
    assert merged(records, OVERVIEW_ORDER) == plain.json()


def test_the_first_record_does_not_wait_for_the_slowest_backend(gw: Gateway) -> None:
    _, records = read_records(gw, "/overview/1", NDJSON)
    first_at = records[0][1]
    slow_at = next(at for r, at in records if r.get("name") == "slow")
    assert first_at < 0.25, records  # the 20 ms backend, not the 400 ms one
    assert slow_at >= 0.4


def test_a_backend_reading_another_follows_it(gw: Gateway) -> None:
    _, records = read_records(gw, "/account/3", SSE)
    assert [r.get("name") for r, _ in records] == ["user", "account", None]
    assert records[-1][0] == {"event": "done", "completed": True}
    assert merged(records, ["user", "account"]) == gw.get("/account/3").json()


def test_a_failed_required_backend_ends_with_the_plain_problem(gw: Gateway) -> None:
    _, records = read_records(gw, "/doomed", NDJSON, **{"X-Request-ID": "doomed-1"})
    plain = gw.get("/doomed", headers={"X-Request-ID": "doomed-1"})
    assert plain.status_code == 502
    assert plain.headers["content-type"] == "application/problem+json"
    assert records[-1][0] == {"event": "error", "problem": plain.json()}
    # the part that finished before the failure was sent; the rest were stopped
    assert [(r["event"], r.get("name")) for r, _ in records] == [("part", "ok"), ("error", None)]
    assert records[-1][1] < 0.8


def test_streams_are_never_cached_plain_requests_still_are(gw: Gateway, stub: Stub) -> None:
    stub.reset()
    for _ in range(3):
        response, records = read_records(gw, "/cached-stream", SSE)
        assert "x-cache" not in response.headers
        assert records[-1][0] == {"event": "done", "completed": True}
    assert stub.stats()["paths"]["/echo/cached-stream"] == 3
    assert gw.get("/cached-stream").headers["x-cache"] == "MISS"
    assert gw.get("/cached-stream").headers["x-cache"] == "HIT"
    assert stub.stats()["paths"]["/echo/cached-stream"] == 4
    # a stream after the plain answer was cached still calls the backend
    read_records(gw, "/cached-stream", NDJSON)
    assert stub.stats()["paths"]["/echo/cached-stream"] == 5


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (SSE, SSE),
        (NDJSON, NDJSON),
        (f"{NDJSON}, {SSE}", NDJSON),  # a tie: the first written
        (f"application/json, {SSE};q=0.5", "application/json"),
        (f"application/json;q=0.5, {SSE}", SSE),
        ("*/*", "application/json"),
        ("text/*", SSE),
        (f"{SSE};q=0", "application/json"),
        ("", "application/json"),
    ],
)
def test_accept_decides_between_plain_json_and_a_stream(
    gw: Gateway, accept: str, expected: str
) -> None:
    response, _ = read_records(gw, "/account/1", accept)
    assert response.status_code == 200
    assert response.headers["content-type"] == expected


def test_a_route_without_stream_answers_plain_json(gw: Gateway) -> None:
    response, records = read_records(gw, "/plain-only", SSE)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert records == []


def test_auth_runs_before_any_stream_starts(gw: Gateway) -> None:
    response, records = read_records(gw, "/private-stream", SSE)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert records == []
    response, records = read_records(gw, "/private-stream", SSE, **{"X-API-Key": "alice-key"})
    assert response.status_code == 200
    assert records[-1][0] == {"event": "done", "completed": True}


def test_a_stream_has_one_access_log_line(gw: Gateway) -> None:
    read_records(gw, "/overview/2", SSE, **{"X-Request-ID": "progressive-log"})
    time.sleep(0.2)
    lines = [
        json.loads(line)
        for line in gw.process.output().splitlines()
        if line.startswith("{") and '"progressive-log"' in line
    ]
    assert len(lines) == 1
    assert lines[0]["status"] == 200 and lines[0]["completed"] is False
    assert {b["name"] for b in lines[0]["backends"]} == set(OVERVIEW_ORDER)
