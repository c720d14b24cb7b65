"""Aggregate routes through the real gateway process (SPEC 3.1, 3.7)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Gateway, GatewayFactory, Stub

ROUTES = """
version: 1
settings:
  max_response_size: 4KiB
upstreams:
  stub: {url: "${STUB}", timeout: 2s}
  quick: {url: "${STUB}", timeout: 300ms}
  down: {url: "http://127.0.0.1:${DOWN_PORT}", timeout: 1s}
routes:
  - name: three-slow
    path: /three
    backends:
      - {upstream: stub, path: /delay/300/a, key: a}
      - {upstream: stub, path: /delay/300/b, key: b}
      - {upstream: stub, path: /delay/300/c, key: c}
  - name: optional-down
    path: /optional-down
    backends:
      - {upstream: stub, path: /echo/ok, key: ok, allow: [method]}
      - {upstream: down, path: /x, key: gone, required: false}
  - name: required-down
    path: /required-down
    backends:
      - {upstream: stub, path: /echo/ok, key: ok, required: false}
      - {upstream: down, path: /x, key: gone}
  - name: all-optional-fail
    path: /all-optional-fail
    backends:
      - {upstream: stub, path: /status/404, key: a, required: false}
      - {upstream: down, path: /x, key: b, required: false}
  - name: upstream-timeout
    path: /upstream-timeout
    backends: [{upstream: quick, path: /delay/2000, key: slow}]
  - name: route-deadline
    path: /route-deadline
    timeout: 600ms
    backends: [{upstream: stub, path: /dribble/20/100, key: drip}]
  - name: status
    path: /status/{code}
    backends: [{upstream: stub, path: "/status/{code}", key: s}]
  - name: not-json
    path: /not-json
    backends: [{upstream: stub, path: /text, key: t}]
  - name: too-large
    path: /too-large
    backends: [{upstream: stub, path: /bigjson/10000, key: t}]
  - name: redirect
    path: /redirect
    backends: [{upstream: stub, path: /redirect, key: r}]
  - name: chained
    path: /chained/{id}
    backends:
      - {upstream: stub, path: "/users/{id}", key: user, query: {ms: "200"}}
      - {upstream: stub, path: "/accounts/{user.account_id}", key: account, query: {ms: "200"}}
      - {upstream: stub, path: /delay/300/side, key: side, allow: [path]}
  - name: chained-missing-field
    path: /chained-missing
    backends:
      - {upstream: stub, path: /echo/x, key: e}
      - {upstream: stub, path: "/accounts/{e.nope}", key: account}
  - name: fail-fast
    path: /fail-fast
    backends:
      - {upstream: stub, path: /hang, key: hang}
      - {upstream: stub, path: /status/409, key: conflict}
  - name: first-failure-decides
    path: /first-failure-decides
    backends:
      - {upstream: stub, path: /status/404, key: a, required: false}
      - {upstream: down, path: /x, key: b}
      - {upstream: stub, path: /status/400, query: {ms: "200"}, key: c}  # fails last
  - name: shaping
    path: /shaping
    backends:
      - upstream: stub
        path: /json
        query: {body: '{{"data": [{{"id": 1, "total": 5, "secret": "s"}}, {{"id": 2, "total": 7, "secret": "t"}}], "meta": 1}}'}
        key: orders
        target: data
        allow: [id, total]
        rename: {total: amount}
      - upstream: stub
        path: /json
        query: {body: '{{"profile": {{"name": "Ada", "password": "p"}}, "n": 1}}'}
        deny: [profile.password]
      - upstream: stub
        path: /json
        query: {body: '{{"n": 2, "m": 3}}'}
  - name: single-list
    path: /single-list
    backends:
      - {upstream: stub, path: /json, query: {body: '[{{"a": 1, "b": 2}}, {{"a": 3, "b": 4}}]'}, allow: [a]}
  - name: top-level-list-needs-key
    path: /list-merge
    backends:
      - {upstream: stub, path: /json, query: {body: '[1, 2]'}}
      - {upstream: stub, path: /json, query: {body: '{{"x": 1}}'}}
  - name: post-backends
    path: /post
    methods: [POST]
    backends:
      - {upstream: stub, path: /echo/one, key: one, method: POST, allow: [method, body, headers]}
      - {upstream: stub, path: /echo/two, key: two, method: POST, allow: [method, body]}
      - {upstream: stub, path: /echo/three, key: three, allow: [method, body_size]}
  - name: headers
    path: /headers
    backends:
      - {upstream: stub, path: /echo/h1, key: one, forward_headers: [X-Tenant], allow: [headers]}
      - {upstream: stub, path: /echo/h2, key: two, allow: [headers]}
  - name: hang
    path: /hang
    backends:
      - {upstream: stub, path: /hang, key: a}
      - {upstream: stub, path: /hang, key: b}
  - name: item-new
    path: /items/new
    backends: [{upstream: stub, path: /json, query: {body: '{{"route": "new"}}'}}]
  - name: item-by-id
    path: /items/{id}
    backends: [{upstream: stub, path: /json, query: {body: '{{"route": "id", "id": "{id}"}}'}}]
  - name: item-rest
    path: /items/{id}/{rest:path}
    backends: [{upstream: stub, path: /json, query: {body: '{{"route": "rest", "rest": "{rest}"}}'}}]
  - name: query-refs
    path: /query-refs
    backends:
      - {upstream: stub, path: "/echo/{query.kind}", query: {q: "{query.q}", page: "{query.page}", fixed: "a b&c"}, allow: [raw_path, query]}
"""


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, stub: Stub, dead_port: int) -> Gateway:
    return start_gateway(ROUTES, STUB=stub.url, DOWN_PORT=str(dead_port))


def is_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail", "request_id"} <= body.keys()
    assert body["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    return body


def test_backends_run_concurrently(gw: Gateway) -> None:
    gw.get("/three")  # warm the upstream pool
    started = time.perf_counter()
    response = gw.get("/three")
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert set(response.json()) == {"a", "b", "c"}
    assert response.headers["x-gateway-completed"] == "true"
    assert response.headers["content-type"] == "application/json"
    assert elapsed < 0.4, f"three 300 ms backends took {elapsed:.3f}s"


def test_optional_backend_down_gives_partial_200(gw: Gateway) -> None:
    response = gw.get("/optional-down")
    assert response.status_code == 200
    assert response.headers["x-gateway-completed"] == "false"
    assert response.json() == {"ok": {"method": "GET"}}


def test_required_backend_down_gives_502(gw: Gateway) -> None:
    body = is_problem(gw.get("/required-down"), 502)
    assert body["route"] == "required-down"
    assert body["backend"] == "gone"


def test_every_backend_failing_fails_the_route(gw: Gateway) -> None:
    body = is_problem(gw.get("/all-optional-fail"), 404)  # the first in list order decides
    assert body["backend"] == "a"


def test_upstream_timeout_gives_504(gw: Gateway) -> None:
    started = time.perf_counter()
    body = is_problem(gw.get("/upstream-timeout"), 504)
    assert body["backend"] == "slow"
    assert time.perf_counter() - started < 1.5


def test_route_deadline_is_a_total_deadline(gw: Gateway) -> None:
    """The upstream sends a byte every 100 ms, so no inactivity timeout fires;
    the route's 600 ms deadline still ends it."""
    started = time.perf_counter()
    is_problem(gw.get("/route-deadline"), 504)
    assert time.perf_counter() - started < 1.2


@pytest.mark.parametrize(
    ("upstream", "route_status"), [(404, 404), (409, 409), (400, 400), (500, 502), (503, 502)]
)
def test_upstream_status_mapping(gw: Gateway, upstream: int, route_status: int) -> None:
    response = gw.get(f"/status/{upstream}")
    body = is_problem(response, route_status)
    assert body["backend"] == "s"
    assert "upstream-internal-detail" not in response.text  # never an upstream's internals


@pytest.mark.parametrize("path", ["/not-json", "/too-large", "/redirect"])
def test_invalid_upstream_answers_fail_the_backend(gw: Gateway, path: str) -> None:
    is_problem(gw.get(path), 502)


def test_chained_backend_starts_when_its_dependency_finishes(gw: Gateway) -> None:
    gw.get("/chained/7")
    started = time.perf_counter()
    response = gw.get("/chained/7")
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"]["account_id"] == "acc-7"
    assert body["account"] == {"account": "acc-7", "balance": 10}
    assert body["side"] == {"path": "/delay/300/side"}
    # users (200 ms) then accounts (200 ms) = 400 ms; side (300 ms) runs alongside.
    assert 0.4 <= elapsed < 0.55, elapsed


def test_missing_dependency_field_fails_the_dependent(gw: Gateway) -> None:
    body = is_problem(gw.get("/chained-missing"), 502)
    assert body["backend"] == "account"


def test_required_failure_cancels_sibling_calls(gw: Gateway, stub: Stub) -> None:
    before = stub.stats()["disconnects"]
    started = time.perf_counter()
    body = is_problem(gw.get("/fail-fast"), 409)
    assert body["backend"] == "conflict"
    assert time.perf_counter() - started < 1
    deadline = time.monotonic() + 3
    while stub.stats()["disconnects"] == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stub.stats()["disconnects"] == before + 1  # the hanging call was cancelled


def test_first_required_failure_in_list_order_decides(gw: Gateway) -> None:
    body = is_problem(gw.get("/first-failure-decides"), 502)
    assert body["backend"] == "b"


def test_shaping_and_merging(gw: Gateway) -> None:
    response = gw.get("/shaping")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "orders": [{"id": 1, "amount": 5}, {"id": 2, "amount": 7}],
        "profile": {"name": "Ada"},
        "n": 2,  # merged at the top level in list order: later wins
        "m": 3,
    }


def test_single_backend_without_key_returns_its_body_as_is(gw: Gateway) -> None:
    assert gw.get("/single-list").json() == [{"a": 1}, {"a": 3}]


def test_non_object_body_cannot_merge_at_top_level(gw: Gateway) -> None:
    is_problem(gw.get("/list-merge"), 502)


def test_post_backends_receive_the_whole_body(gw: Gateway) -> None:
    response = gw.request(
        "POST", "/post", content=b'{"order": 1}', headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["one"]["method"] == "POST"
    assert body["one"]["body"] == '{"order": 1}'
    assert body["two"] == {"method": "POST", "body": '{"order": 1}'}
    assert ["content-type", "application/json"] in body["one"]["headers"]
    assert body["three"] == {"method": "GET", "body_size": 0}


def test_query_references(gw: Gateway) -> None:
    body = gw.get("/query-refs", params={"kind": "books", "q": "a/b c"}).json()
    assert body["raw_path"] == "/echo/books"
    assert body["query"] == "q=a%2Fb%20c&fixed=a%20b%26c"  # page was not sent: left out


def test_head_is_served_wherever_get_is(gw: Gateway) -> None:
    get = gw.get("/optional-down")
    head = gw.request("HEAD", "/optional-down")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]


def test_unknown_path_and_method(gw: Gateway) -> None:
    is_problem(gw.get("/nothing-here"), 404)
    response = gw.request("DELETE", "/three")
    is_problem(response, 405)
    assert response.headers["allow"] == "GET, HEAD"


def test_headers_sent_to_backends(gw: Gateway) -> None:
    body = gw.get(
        "/headers",
        headers={
            "Accept-Language": "nl",
            "X-Tenant": "t-1",
            "Cookie": "s=1",
            "Authorization": "Bearer x",
            "X-Other": "no",
        },
    ).json()
    one = dict(body["one"]["headers"])
    two = dict(body["two"]["headers"])
    assert (
        one["accept-language"] == two["accept-language"] == "nl"
    )  # settings.forward_headers (the default)
    assert one["x-tenant"] == "t-1" and "x-tenant" not in two  # a backend's own list
    for headers in (one, two):
        assert (
            "cookie" not in headers and "authorization" not in headers and "x-other" not in headers
        )
        assert headers["x-forwarded-for"] == "127.0.0.1" and headers["x-forwarded-proto"] == "http"
        assert headers["x-request-id"]


def test_client_disconnect_cancels_every_backend(gw: Gateway, stub: Stub) -> None:
    import socket

    before = stub.stats()["disconnects"]
    with socket.create_connection(("127.0.0.1", gw.process.port)) as sock:
        sock.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 3
        while stub.stats()["active"] < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    deadline = time.monotonic() + 3
    while stub.stats()["disconnects"] < before + 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert stub.stats()["disconnects"] == before + 2


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/items/new", {"route": "new"}),
        ("/items/42", {"route": "id", "id": "42"}),
        ("/items/new/a/b", {"route": "rest", "rest": "a/b"}),
    ],
)
def test_literal_beats_parameter_and_path_matches_last(
    gw: Gateway, path: str, expected: dict[str, Any]
) -> None:
    assert gw.get(path).json() == expected


def test_too_many_query_fields_is_400(gw: Gateway) -> None:
    response = gw.get("/query-refs?" + "&".join("f=1" for _ in range(1500)))
    is_problem(response, 400)
