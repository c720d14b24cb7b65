"""CORS (gateway/policies/cors.py): the routes file's `cors`, and its stage."""

from __future__ import annotations

import pytest
from django.http import HttpResponse

from gateway.errors import Forbidden
from gateway.policies.cors import OPTION, build_cors, cors_stage
from gateway.routes import RoutesFileError
from tests.calls import context, handshake_call, http_call, ok
from tests.conftest import table

ROUTES = table(
    """
    version: 1
    settings:
      cors: {allow_origins: [https://a.example], allow_methods: [GET], allow_credentials: true}
    upstreams: {u: {url: "http://u"}}
    routes:
      - {name: default, path: /d, methods: [GET, POST], backends: [{upstream: u, path: /x}]}
      - {name: any, path: /a, cors: {allow_origins: ["*"], expose_headers: [X-Total], max_age: 1m}, backends: [{upstream: u, path: /x}]}
      - {name: plain, path: /o, cors: null, backends: [{upstream: u, path: /x}]}
    """
)
DEFAULT, ANY, OFF = ROUTES.routes
CONTEXT = context(ROUTES)


def test_settings_give_the_default_a_route_replaces_and_null_turns_off() -> None:
    assert OPTION.of(DEFAULT) == OPTION.default(ROUTES.settings)
    policy = OPTION.of(ANY)
    assert policy is not None and policy.any_origin and policy.max_age == 60
    assert OPTION.of(OFF) is None and cors_stage(OFF, CONTEXT) is None


def test_bad_values_are_errors_at_their_line() -> None:
    with pytest.raises(RoutesFileError) as raised:
        table(
            """
            version: 1
            upstreams: {u: {url: "http://u"}}
            routes:
              - name: r
                path: /r
                cors: {allow_origins: ["*", "ftp://x"], allow_credentials: true, allow_methods: [FETCH]}
                backends: [{upstream: u, path: /x}]
            """
        )
    lines = raised.value.lines()
    assert any(
        ":7: route 'r': cors.allow_origins: 'ftp://x' is not an origin" in line for line in lines
    )
    assert any("allow_methods: unknown method 'FETCH'" in line for line in lines)


def test_credentials_are_never_allowed_for_any_origin() -> None:
    assert build_cors(ANY, OPTION.of(ANY)).credentials is False  # type: ignore[arg-type]
    assert build_cors(DEFAULT, OPTION.of(DEFAULT)).credentials is True  # type: ignore[arg-type]


async def test_an_allowed_origin_gets_its_headers_on_whatever_the_answer_is() -> None:
    stage = cors_stage(DEFAULT, CONTEXT)
    assert stage is not None
    call = http_call(DEFAULT, headers={"Origin": "https://a.example"})
    response = await stage(ok)(call)
    assert isinstance(response, HttpResponse) and response.content == b"ok"
    assert call.answer_headers == [
        ("Vary", "Origin"),
        ("Access-Control-Allow-Origin", "https://a.example"),
        ("Access-Control-Allow-Credentials", "true"),
    ]
    other = http_call(DEFAULT, headers={"Origin": "https://evil.example"})
    await stage(ok)(other)
    assert other.answer_headers == [("Vary", "Origin")]  # no CORS header for it


async def test_expose_headers_go_with_the_answer() -> None:
    stage = cors_stage(ANY, CONTEXT)
    assert stage is not None
    call = http_call(ANY, headers={"Origin": "https://any.example"})
    await stage(ok)(call)
    assert ("Access-Control-Expose-Headers", "X-Total") in call.answer_headers


async def test_a_preflight_is_answered_here_and_goes_no_further() -> None:
    stage = cors_stage(DEFAULT, CONTEXT)
    assert stage is not None
    call = http_call(DEFAULT, headers={"Origin": "https://a.example"}, preflight=True)
    response = await stage(ok)(call)
    assert response is not None and response.status_code == 204
    assert "+reached" not in call.envelope.request_id
    assert response["Access-Control-Allow-Origin"] == "https://a.example"
    assert response["Access-Control-Allow-Methods"] == "GET"  # the policy's list
    assert response["Access-Control-Max-Age"] == "600"
    assert "Content-Type" not in response
    refused = await stage(ok)(
        http_call(DEFAULT, headers={"Origin": "https://evil.example"}, preflight=True)
    )
    assert refused is not None and refused.status_code == 204
    assert "Access-Control-Allow-Origin" not in refused


async def test_a_handshakes_origin_is_checked_by_the_gateway() -> None:
    stage = cors_stage(DEFAULT, CONTEXT)
    assert stage is not None
    with pytest.raises(Forbidden):
        await stage(ok)(handshake_call(DEFAULT, headers={"Origin": "https://evil.example"}))
    allowed = handshake_call(DEFAULT, headers={"Origin": "https://a.example"})
    await stage(ok)(allowed)
    assert allowed.answer_headers == []  # nothing for a browser to check on a WebSocket
    await stage(ok)(handshake_call(DEFAULT))  # no Origin: not a browser, not asked
