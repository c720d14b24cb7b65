"""The two Django middleware (gateway/edge/middleware.py): the edge's (Host
check, X-Request-ID, the error net) and the one that runs a matched route's
stack."""

from __future__ import annotations

import io
import logging
from typing import Any

import orjson
import pytest
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from gateway.assembly import Gateway, build_gateway
from gateway.edge.intake import open_envelope
from gateway.edge.middleware import EdgeMiddleware, EdgeRequest, RouteMiddleware
from gateway.envelope import RouteCall
from gateway.errors import Forbidden
from gateway.runtime import Runtime
from gateway.stack import Answer
from tests.conftest import table

GATEWAY = build_gateway(
    table(
        """
        version: 1
        upstreams: {u: {url: "http://127.0.0.1:1"}}  # refuses at once
        routes:
          - name: items
            path: /items/{id}
            cors: {allow_origins: [https://app.example]}
            backends: [{upstream: u, path: /x}]
        """
    ),
    Runtime(redis_url="", failure_mode="open"),
)


def request(
    path: str = "/items/1", gateway: Gateway | None = GATEWAY, **headers: str
) -> EdgeRequest:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(k.lower().replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
        "client": ("198.51.100.4", 1234),
        "scheme": "http",
    }
    built = EdgeRequest(scope, io.BytesIO())
    built.envelope = open_envelope(scope, gateway, ())
    built.gateway = gateway
    return built


def content(response: HttpResponseBase) -> bytes:
    assert isinstance(response, HttpResponse)
    return response.content


async def view(r: HttpRequest) -> HttpResponseBase:
    return HttpResponse("from the view")


def with_handler(handler: Any) -> Gateway:
    """GATEWAY, with the route's stack replaced by `handler`."""
    return Gateway(
        table=GATEWAY.table,
        router=GATEWAY.router,
        handlers={"items": handler},
        runtime=GATEWAY.runtime,
        query_credentials={},
        secret_params=frozenset(),
        preflights=frozenset(),
        handshakes=frozenset(),
        websocket_max_size=1,
    )


async def test_every_answer_carries_the_request_id() -> None:
    made = request("/nowhere")
    response = await EdgeMiddleware(view)(made)
    assert response["X-Request-ID"] == made.envelope.request_id


async def test_unexpected_exception_becomes_a_500_problem(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(r: HttpRequest) -> HttpResponseBase:
        raise RuntimeError("secret internals")

    with caplog.at_level(logging.ERROR, logger="gateway"):
        response = await EdgeMiddleware(broken)(request())
    assert response.status_code == 500
    body = orjson.loads(content(response))
    assert body["detail"] == "internal error" and body["route"] == "items"
    assert body["request_id"] == response["X-Request-ID"]
    assert b"secret" not in content(response) and b"Traceback" not in content(response)
    assert any("unhandled error" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_a_host_not_allowed_is_refused_before_anything_runs(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["gw.example"]
    ran = []

    async def counting(r: HttpRequest) -> HttpResponseBase:
        ran.append(r)
        return HttpResponse()

    refused = await EdgeMiddleware(counting)(request(Host="evil.example"))
    assert refused.status_code == 400 and not ran
    assert orjson.loads(content(refused))["detail"] == "host not allowed"
    assert (await EdgeMiddleware(counting)(request(Host="gw.example"))).status_code == 200
    assert (await EdgeMiddleware(counting)(request("/healthz", Host="evil"))).status_code == 200


async def test_a_matched_request_runs_its_stack_not_the_view() -> None:
    response = await RouteMiddleware(view)(request(Origin="https://app.example"))
    # the stack's CORS stage ran (the backend cannot be reached: a 502 of the route)
    assert response["Access-Control-Allow-Origin"] == "https://app.example"
    assert response["Vary"] == "Origin"
    assert response.status_code == 502 and b"from the view" not in content(response)


async def test_unmatched_requests_go_to_the_views() -> None:
    response = await RouteMiddleware(view)(request("/nowhere"))
    assert content(response) == b"from the view"
    no_routes = await RouteMiddleware(view)(request(gateway=None))
    assert content(no_routes) == b"from the view"


async def test_stack_errors_become_problems_with_the_answer_headers() -> None:
    async def refuse(call: RouteCall) -> Answer:
        call.answer_headers.append(("RateLimit-Limit", "5"))
        raise Forbidden("not you")

    response = await RouteMiddleware(view)(request(gateway=with_handler(refuse)))
    assert response.status_code == 403 and response["RateLimit-Limit"] == "5"
    body = orjson.loads(content(response))
    assert body["route"] == "items" and body["detail"] == "not you"


async def test_vary_values_are_added_to_the_answers_own() -> None:
    async def answer(call: RouteCall) -> Answer:
        call.answer_headers += [("Vary", "Origin"), ("Vary", "Origin"), ("X-A", "1")]
        response = HttpResponse()
        response["Vary"] = "Accept-Encoding"
        return response

    response = await RouteMiddleware(view)(request(gateway=with_handler(answer)))
    assert response["Vary"] == "Accept-Encoding, Origin" and response["X-A"] == "1"


async def test_a_bug_in_a_stack_is_a_500_naming_the_route(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(call: RouteCall) -> Answer:
        raise KeyError("internal")

    with caplog.at_level(logging.ERROR, logger="gateway"):
        response = await RouteMiddleware(view)(request(gateway=with_handler(broken)))
    assert response.status_code == 500
    assert orjson.loads(content(response))["route"] == "items"
    assert any("unhandled error in route items" in r.getMessage() for r in caplog.records)
