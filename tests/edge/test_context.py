"""The first middleware: request ID, client address, last-chance error net."""

from __future__ import annotations

import io
import logging

import orjson
import pytest
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from gateway.edge.context import RequestContextMiddleware
from gateway.envelope import GatewayRequest


def request(headers: dict[str, str] | None = None, path: str = "/x") -> GatewayRequest:
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("198.51.100.4", 1234),
        "scheme": "http",
    }
    return GatewayRequest(scope, io.BytesIO())


async def test_context_and_request_id() -> None:
    seen: list[GatewayRequest] = []

    async def view(r: HttpRequest) -> HttpResponseBase:
        seen.append(r)  # type: ignore[arg-type]
        return HttpResponse("ok")

    response = await RequestContextMiddleware(view)(request({"X-Request-ID": "abc", "Host": "h:1"}))
    assert response["X-Request-ID"] == "abc"
    ctx = seen[0].gateway
    assert (ctx.client, ctx.forwarded_for, ctx.forwarded_host, ctx.forwarded_proto) == (
        "198.51.100.4",
        "198.51.100.4",
        "h:1",
        "http",
    )


async def test_unexpected_exception_becomes_a_500_problem(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(r: HttpRequest) -> HttpResponseBase:
        raise RuntimeError("secret internals")

    with caplog.at_level(logging.ERROR, logger="gateway"):
        response = await RequestContextMiddleware(broken)(request())
    assert response.status_code == 500
    body = orjson.loads(response.content)  # type: ignore[attr-defined]
    assert body["detail"] == "internal error"
    assert body["request_id"] == response["X-Request-ID"]
    assert b"secret" not in response.content
    assert b"Traceback" not in response.content
    assert any(
        "unhandled error" in r.getMessage() and r.exc_info for r in caplog.records
    )  # logged for operators
