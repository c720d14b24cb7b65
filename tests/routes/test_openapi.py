"""The routed API as OpenAPI 3.1 (gateway/routes/openapi.py): valid by
openapi-spec-validator, one operation per route and method, WebSockets left
out, and what each route really answers."""

from __future__ import annotations

import json
import subprocess
import textwrap
from typing import Any

from openapi_spec_validator import validate

from gateway.registry import openapi_document, parse_route_table
from tests.processes import PYTHON, ROOT

ROUTES = """\
version: 1
upstreams:
  u: {url: "http://u.svc"}
auth:
  keys: {type: api_key, header: X-Partner-Key, keys: [{id: a, key: k}], query_param: api_key}
  staff: {type: jwt, algorithms: [HS256], secret: s3cret-s3cret-s3cret-s3cret-s3cret}
routes:
  - name: dash
    path: /users/{id}/dash
    auth: [keys, staff]
    scopes: [users:read]
    rate_limit: {limit: 10, window: 1m}
    stream: true
    summary: A user's dashboard
    description: Three services, merged.
    tags: [users]
    backends: [{upstream: u, path: "/users/{id}"}]
  - name: files
    path: /files/{rest:path}
    methods: [GET, PUT]
    proxy: {upstream: u, path: "/{rest}"}
  - name: chat
    path: /chat
    websocket: {upstream: u, path: /ws}
"""


def document() -> dict[str, Any]:
    return openapi_document(parse_route_table(textwrap.dedent(ROUTES), "r.yaml"))


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = document()
    validate(doc)
    assert doc["openapi"] == "3.1.0"


def test_one_operation_per_route_and_method_websockets_aside() -> None:
    paths = document()["paths"]
    assert set(paths) == {"/users/{id}/dash", "/files/{rest}"}
    assert set(paths["/users/{id}/dash"]) == {"get"}  # HEAD folded into GET
    assert set(paths["/files/{rest}"]) == {"get", "put"}
    assert "HEAD is served too" in paths["/files/{rest}"]["get"]["description"]
    rest = paths["/files/{rest}"]["get"]["parameters"][0]
    assert rest["name"] == "rest" and rest["in"] == "path" and rest["required"] is True


def test_what_a_route_documents() -> None:
    op = document()["paths"]["/users/{id}/dash"]["get"]
    assert op["summary"] == "A user's dashboard"
    assert op["description"] == "Three services, merged." and op["tags"] == ["users"]
    assert op["security"] == [
        {"keys": ["users:read"]},
        {"keys-query": ["users:read"]},
        {"staff": ["users:read"]},
    ]
    ok = op["responses"]["200"]
    assert set(ok["content"]) == {"application/json", "text/event-stream", "application/x-ndjson"}
    assert set(ok["headers"]) == {
        "Content-Encoding",  # compress: on by default
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
        "X-Gateway-Completed",
    }
    assert "`X-Partner-Key: <API key>` (or `?api_key=`)" in op["x-gateway-notes"]
    assert "with scopes users:read" in op["x-gateway-notes"]
    statuses = set(op["responses"])
    assert {"401", "403", "404", "4XX", "429", "502", "503", "504"} <= statuses
    assert set(ok["headers"]) >= {"X-Gateway-Completed"}
    too_many = op["responses"]["429"]
    assert "Retry-After" in too_many["headers"]
    problem = too_many["content"]["application/problem+json"]["schema"]
    assert problem == {"$ref": "#/components/schemas/Problem"}


def test_security_schemes_follow_the_providers() -> None:
    schemes = document()["components"]["securitySchemes"]
    assert schemes["keys"] == {"type": "apiKey", "in": "header", "name": "X-Partner-Key"}
    assert schemes["keys-query"] == {"type": "apiKey", "in": "query", "name": "api_key"}
    assert schemes["staff"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


def test_a_public_proxy_route_has_no_auth_statuses() -> None:
    op = document()["paths"]["/files/{rest}"]["put"]
    assert "security" not in op
    assert "401" not in op["responses"] and "429" not in op["responses"]
    assert op["responses"]["200"]["content"] == {"*/*": {"schema": {}}}


def test_the_command_prints_the_sample_files_document() -> None:
    printed = subprocess.run(
        [PYTHON, "manage.py", "export_openapi", "routes.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    doc = json.loads(printed)
    validate(doc)
    assert "/api/users/{user_id}/dashboard" in doc["paths"]


def test_the_command_writes_a_file_when_asked(tmp_path: object) -> None:
    output = f"{tmp_path}/openapi.json"
    subprocess.run(
        [PYTHON, "manage.py", "export_openapi", "routes.yaml", "-o", output],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=True,
    )
    with open(output) as handle:
        assert "/api/users/{user_id}/dashboard" in json.load(handle)["paths"]
    usage = subprocess.run(
        [PYTHON, "manage.py", "export_openapi", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "ROUTES_FILE" in usage and "--output FILE" in usage


def test_websocket_routes_are_described_beside_the_paths() -> None:
    doc = document()
    assert doc["x-gateway-websockets"] == [{"name": "chat", "path": "/chat"}]
    assert "`/chat` (chat)" in doc["info"]["description"]


def test_an_aggregate_answer_names_its_keys_and_allowed_fields() -> None:
    table = parse_route_table(
        textwrap.dedent("""\
        version: 1
        upstreams: {u: {url: "http://u"}}
        routes:
          - name: r
            path: /r
            backends:
              - {upstream: u, path: /a, key: user, allow: [id, name], rename: {name: full}}
              - {upstream: u, path: /b, key: orders}
        """)
    )
    op = openapi_document(table)["paths"]["/r"]["get"]
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["properties"]["orders"] == {}
    assert set(schema["properties"]["user"]["properties"]) == {"id", "full"}
