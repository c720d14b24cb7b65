"""`static:` routes through a real gateway (SPEC 3.16): the answer the routes
file wrote, behind every policy of the route."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import Gateway, GatewayFactory
from tests.processes import manage

ROUTES = """
version: 1
auth:
  keys: {type: api_key, keys: [{id: alice, key: alice-key}]}
routes:
  - name: gone
    path: /v1/{rest:path}
    methods: [GET, POST]
    static:
      status: 410
      headers: {Sunset: "Wed, 31 Dec 2026 23:59:59 GMT"}
      body: {error: "v1 is gone", use: /v2/}
      content_type: application/problem+json
  - name: text
    path: /maintenance
    static: {status: 503, body: "Back at 6.", headers: {Retry-After: "600"}}
  - name: private
    path: /mock/me
    auth: keys
    cors: {allow_origins: ["https://app.example"]}
    static: {body: {id: alice, plan: pro}}
  - name: empty
    path: /ping
    static: {status: 204}
"""


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory) -> Gateway:
    return start_gateway(ROUTES)


def test_the_answer_the_file_wrote(gw: Gateway) -> None:
    gone = gw.request("POST", "/v1/orders/7", content=b"ignored")
    assert gone.status_code == 410
    assert gone.headers["content-type"] == "application/problem+json"
    assert gone.headers["sunset"] == "Wed, 31 Dec 2026 23:59:59 GMT"
    assert gone.json() == {"error": "v1 is gone", "use": "/v2/"}
    assert gone.headers["x-request-id"]
    text = gw.get("/maintenance")
    assert (text.status_code, text.text) == (503, "Back at 6.")
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert text.headers["retry-after"] == "600"
    empty = gw.get("/ping")
    assert empty.status_code == 204 and empty.content == b""


def test_head_and_methods(gw: Gateway) -> None:
    head = gw.request("HEAD", "/maintenance")
    assert head.status_code == 503 and head.content == b""
    assert head.headers["content-length"] == str(len("Back at 6."))
    refused = gw.request("DELETE", "/v1/x")
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD, POST"


def test_every_policy_of_the_route_applies(gw: Gateway) -> None:
    assert gw.get("/mock/me").status_code == 401
    answer = gw.get("/mock/me", headers={"X-API-Key": "alice-key", "Origin": "https://app.example"})
    assert answer.status_code == 200 and answer.json() == {"id": "alice", "plan": "pro"}
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["access-control-allow-origin"] == "https://app.example"


def test_mistakes_are_errors_at_their_line(tmp_path: Path) -> None:
    bad = tmp_path / "routes.yaml"
    bad.write_text(
        """version: 1
routes:
  - name: a
    path: /a
    static:
      status: 700
  - name: b
    path: /b
    static:
      headers: {Content-Length: "3"}
  - name: c
    path: /c
    static: {status: 204, body: x}
"""
    )
    result = manage("check_routes", str(bad))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = (result.stdout + result.stderr).splitlines()
    assert f"{bad}:6: route 'a': static.status: must be at most 599, got 700" in lines
    assert any(
        line.startswith(f"{bad}:10: route 'b': static.headers.Content-Length") for line in lines
    )
    assert any(line.startswith(f"{bad}:13: route 'c': static.body: a 204 answer") for line in lines)
