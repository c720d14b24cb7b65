"""The aggregate handler against mocked upstreams (respx at httpx's layer)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
import respx
from django.http import HttpResponse

from gateway.assembly import build_gateway
from gateway.envelope import GatewayRequest, RouteCall, open_call
from gateway.errors import BackendFailed, BadRequest
from gateway.router import Match, Router, split_path
from gateway.runtime import Runtime
from gateway.stack import RouteHandler
from tests.conftest import envelope, table

ROUTES = """
version: 1
settings:
  forward_headers: [Accept-Language]
upstreams:
  users: {url: "http://users.svc:8080/api", headers: {Authorization: "Bearer svc-token"}}
  orders: {url: "http://orders.svc", timeout: 200ms}
routes:
  - name: dashboard
    path: /u/{id}
    methods: [GET, POST]
    backends:
      - {upstream: users, path: "/users/{id}", key: user, forward_headers: [X-Tenant]}
      - {upstream: orders, path: /orders, query: {user: "{id}"}, key: orders, required: false, target: data}
      - {upstream: orders, path: "/accounts/{user.account}", key: account, method: POST}
"""


@pytest.fixture
async def handler() -> AsyncIterator[tuple[RouteHandler, Router]]:
    routes = table(ROUTES)
    runtime = Runtime(redis_url="", failure_mode="open")
    gateway = build_gateway(routes, runtime)
    yield gateway.handlers["dashboard"], gateway.router
    await runtime.aclose()


def make_request(
    method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> GatewayRequest:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("192.0.2.1", 5000),
        "scheme": "http",
    }
    request = GatewayRequest(scope, io.BytesIO(body))
    request.envelope = envelope(
        request_id="rid-1", client="192.0.2.1", forwarded_for="192.0.2.1", forwarded_host="gw"
    )
    return request


def call(request: GatewayRequest, found: Match) -> RouteCall:
    return open_call(request.envelope, found, request.scope, request=request)


def answered(response: object) -> HttpResponse:
    assert isinstance(response, HttpResponse)
    return response


def match(router: Router, method: str, path: str) -> Match:
    found = router.match(method, split_path(path))
    assert isinstance(found, Match)
    return found


@respx.mock(using="httpx", assert_all_called=False)
async def test_fan_out_shape_and_headers(
    respx_mock: respx.MockRouter, handler: tuple[RouteHandler, Router]
) -> None:
    aggregate, router = handler
    users = respx_mock.get("http://users.svc:8080/api/users/7").respond(
        json={"name": "Ada", "account": "acc-7"}
    )
    orders = respx_mock.get("http://orders.svc/orders", params={"user": "7"}).respond(
        json={"data": [1, 2]}
    )
    accounts = respx_mock.post("http://orders.svc/accounts/acc-7").respond(json={"balance": 3})
    request = make_request(
        "POST",
        "/u/7",
        {
            "Accept-Language": "de",
            "X-Tenant": "t1",
            "Cookie": "c=1",
            "Authorization": "Bearer user",
            "Content-Type": "text/plain",
        },
        body=b"hello",
    )
    response = answered(await aggregate(call(request, match(router, "POST", "/u/7"))))
    assert response.status_code == 200
    assert response["X-Gateway-Completed"] == "true"
    assert orjson.loads(response.content) == {
        "user": {"name": "Ada", "account": "acc-7"},
        "orders": [1, 2],
        "account": {"balance": 3},
    }
    sent = users.calls.last.request.headers
    assert sent["x-tenant"] == "t1"
    assert sent["accept-language"] == "de"
    assert (
        sent["authorization"] == "Bearer svc-token"
    )  # the upstream's static header, not the client's
    assert "cookie" not in sent
    assert sent["x-request-id"] == "rid-1"
    assert sent["x-forwarded-for"] == "192.0.2.1"
    assert "x-tenant" not in orders.calls.last.request.headers  # forward_headers are per backend
    assert accounts.calls.last.request.content == b"hello"
    assert accounts.calls.last.request.headers["content-type"] == "text/plain"


@respx.mock(using="httpx", assert_all_called=False)
async def test_optional_timeout_is_partial(
    respx_mock: respx.MockRouter, handler: tuple[RouteHandler, Router]
) -> None:
    aggregate, router = handler
    respx_mock.get("http://users.svc:8080/api/users/7").respond(json={"account": "a"})
    respx_mock.get("http://orders.svc/orders").mock(side_effect=httpx.ReadTimeout("slow"))
    respx_mock.post("http://orders.svc/accounts/a").respond(json={})
    response = answered(
        await aggregate(call(make_request("GET", "/u/7"), match(router, "GET", "/u/7")))
    )
    assert response.status_code == 200
    assert response["X-Gateway-Completed"] == "false"
    assert set(orjson.loads(response.content)) == {"user", "account"}


@pytest.mark.parametrize(
    ("effect", "status"),
    [
        (httpx.ConnectError("refused"), 502),
        (httpx.ConnectTimeout("slow"), 504),
        (httpx.Response(404, json={}), 404),
        (httpx.Response(500, json={}), 502),
        (httpx.Response(200, text="not json"), 502),
        (httpx.Response(200, json={"no_account": 1}), 502),  # the dependent cannot run
    ],
)
async def test_required_failures(
    handler: tuple[RouteHandler, Router], effect: httpx.Response | Exception, status: int
) -> None:
    aggregate, router = handler
    with respx.mock(using="httpx", assert_all_called=False) as mock:
        mock.get("http://users.svc:8080/api/users/7").mock(side_effect=[effect])
        mock.get("http://orders.svc/orders").respond(json={"data": []})
        with pytest.raises(BackendFailed) as caught:
            await aggregate(call(make_request("GET", "/u/7"), match(router, "GET", "/u/7")))
    assert caught.value.status == status


async def test_unsafe_parameter_is_refused_before_any_call(
    handler: tuple[RouteHandler, Router],
) -> None:
    aggregate, router = handler
    with respx.mock(using="httpx", assert_all_called=False) as mock:
        called = mock.route().respond(json={})
        with pytest.raises(BadRequest):
            await aggregate(
                call(make_request("GET", "/u/%2e%2e"), match(router, "GET", "/u/%2e%2e"))
            )
    assert not called.called
