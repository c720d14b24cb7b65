"""The envelope as the handler builds it, and the first middleware
(gateway/edge/context.py)."""

from __future__ import annotations

import io
import ipaddress
import logging
from typing import Any

import orjson
import pytest
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from gateway.assembly import build_gateway
from gateway.edge.context import EdgeMiddleware, open_envelope
from gateway.envelope import GatewayRequest
from gateway.router import Match, NoMatch
from gateway.runtime import Runtime
from tests.conftest import table

GATEWAY = build_gateway(
    table(
        """
        version: 1
        upstreams: {u: {url: "http://u"}}
        routes:
          - name: items
            path: /items/{id}
            methods: [GET, DELETE]
            cors: {allow_origins: [https://app.example]}
            backends: [{upstream: u, path: /x}]
          - name: other
            path: /items/{id}
            methods: [POST]
            backends: [{upstream: u, path: /y}]
        """
    ),
    Runtime(redis_url="", failure_mode="open"),
)
TRUSTED = (ipaddress.ip_network("10.0.0.0/8"),)


def scope(method: str = "GET", path: str = "/items/1", **headers: str) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(k.lower().replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
        "client": ("198.51.100.4", 1234),
        "scheme": "http",
    }


def test_the_envelope_holds_the_match_its_policy_and_who_asks() -> None:
    envelope = open_envelope(scope(X_Request_ID="abc", Host="h:1"), GATEWAY, TRUSTED)
    assert isinstance(envelope.found, Match) and envelope.route_name == "items"
    assert envelope.gateway is GATEWAY and envelope.policy is GATEWAY.policies["items"]
    assert envelope.cors is GATEWAY.policies["items"].cors and not envelope.preflight
    assert (envelope.request_id, envelope.client, envelope.forwarded_host) == (
        "abc",
        "198.51.100.4",
        "h:1",
    )
    assert (envelope.forwarded_for, envelope.forwarded_proto) == ("198.51.100.4", "http")


def test_a_trusted_proxy_says_who_the_client_is() -> None:
    trusted = scope(
        X_Forwarded_For="203.0.113.9", X_Forwarded_Proto="https", X_Forwarded_Host="api.example"
    )
    trusted["client"] = ("10.1.2.3", 999)
    envelope = open_envelope(trusted, GATEWAY, TRUSTED)
    assert (envelope.client, envelope.forwarded_proto, envelope.forwarded_host) == (
        "203.0.113.9",
        "https",
        "api.example",
    )
    untrusted = open_envelope(
        scope(X_Forwarded_For="203.0.113.9", X_Forwarded_Proto="https"), GATEWAY, TRUSTED
    )
    assert (untrusted.client, untrusted.forwarded_proto) == ("198.51.100.4", "http")


def test_a_preflight_gets_the_cors_of_the_route_serving_its_method() -> None:
    asks_delete = scope(
        "OPTIONS", Origin="https://app.example", Access_Control_Request_Method="delete"
    )
    envelope = open_envelope(asks_delete, GATEWAY, TRUSTED)
    assert envelope.preflight and isinstance(envelope.found, NoMatch)  # OPTIONS itself: 405
    assert envelope.cors is GATEWAY.policies["items"].cors
    asks_post = scope("OPTIONS", Origin="https://app.example", Access_Control_Request_Method="POST")
    assert open_envelope(asks_post, GATEWAY, TRUSTED).cors is None  # "other" has no CORS


def test_without_routes_the_envelope_still_says_who_asks() -> None:
    envelope = open_envelope(scope(), None, TRUSTED)
    assert envelope.found is None and envelope.route_name is None and envelope.request_id


def request(path: str = "/items/1") -> GatewayRequest:
    s = scope(path=path)
    built = GatewayRequest(s, io.BytesIO())
    built.envelope = open_envelope(s, GATEWAY, TRUSTED)
    return built


async def test_every_answer_carries_the_request_id() -> None:
    async def view(r: HttpRequest) -> HttpResponseBase:
        return HttpResponse("ok")

    made = request()
    response = await EdgeMiddleware(view)(made)
    assert response["X-Request-ID"] == made.envelope.request_id


async def test_unexpected_exception_becomes_a_500_problem(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(r: HttpRequest) -> HttpResponseBase:
        raise RuntimeError("secret internals")

    with caplog.at_level(logging.ERROR, logger="gateway"):
        response = await EdgeMiddleware(broken)(request())
    assert response.status_code == 500
    body = orjson.loads(response.content)  # type: ignore[attr-defined]
    assert body["detail"] == "internal error" and body["route"] == "items"
    assert body["request_id"] == response["X-Request-ID"]
    assert b"secret" not in response.content
    assert b"Traceback" not in response.content
    assert any(
        "unhandled error" in r.getMessage() and r.exc_info for r in caplog.records
    )  # logged for operators
