"""`validate` through a real gateway (SPEC 3.16): bodies, query, headers and path
parameters against JSON Schemas (inline and in files beside the routes file),
coercion of query strings, 415 and 400 with pointers, response checks in
report and enforce mode, and schema errors at their line."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import Gateway, GatewayFactory
from tests.processes import Stub, manage

ORDER = {
    "type": "object",
    "required": ["sku", "quantity"],
    "properties": {
        "sku": {"type": "string", "minLength": 3},
        "quantity": {"type": "integer", "minimum": 1},
        "address": {"$ref": "address.json"},
    },
    "additionalProperties": False,
}
ADDRESS = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}
USER_OUT = {
    "type": "object",
    "required": ["id", "name"],
    "properties": {"name": {"type": "string"}},
}

ROUTES = """
version: 1
settings: {{max_response_size: 64KiB}}
upstreams:
  stub: {{url: "{url}"}}
routes:
  - name: orders
    path: /orders/{{shop}}
    methods: [POST]
    validate:
      body: {{$ref: schemas/order.json}}
      params: {{type: object, properties: {{shop: {{type: integer, minimum: 1}}}}}}
      headers: {{type: object, required: [x-tenant]}}
    proxy: {{upstream: stub, path: /echo/orders}}
  - name: search
    path: /search
    validate:
      query:
        type: object
        properties:
          limit: {{type: integer, maximum: 100}}
          exact: {{type: boolean}}
          tag: {{type: array, items: {{type: string}}, maxItems: 2}}
        additionalProperties: false
    proxy: {{upstream: stub, path: /echo/search}}
  - name: user-reported
    path: /reported/{{id}}
    validate:
      response: {{schema: {{$ref: schemas/user-out.json}}}}
    backends: [{{upstream: stub, path: "/json", query: {{body: '{{{{"id": 1}}}}'}}}}]
  - name: big-enforced
    path: /big/{{how}}
    validate:
      response: {{schema: {{required: [name]}}, mode: enforce}}
    proxy: {{upstream: stub, path: "/{{how}}/100000"}}
  - name: user-enforced
    path: /enforced
    validate:
      response: {{schema: {{$ref: schemas/user-out.json}}, mode: enforce}}
    proxy: {{upstream: stub, path: /json}}
"""
FILES = {
    "schemas/order.json": json.dumps(ORDER),
    "schemas/address.json": json.dumps(ADDRESS),
    "schemas/user-out.json": json.dumps(USER_OUT),
}


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, stub: Stub) -> Gateway:
    return start_gateway(ROUTES.format(url=stub.url), files=FILES)


def _post(gw: Gateway, body: object, **headers: str) -> tuple[int, dict[str, object]]:
    answer = gw.request(
        "POST",
        "/orders/7",
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-Tenant": "t1", **headers},
    )
    return answer.status_code, answer.json()


def test_a_valid_body_passes_to_the_upstream(gw: Gateway) -> None:
    status, echoed = _post(gw, {"sku": "abc", "quantity": 2, "address": {"city": "Oslo"}})
    assert status == 200
    assert echoed["path"] == "/echo/orders"


def test_an_invalid_body_gets_400_with_pointers(gw: Gateway) -> None:
    answer = gw.request(
        "POST",
        "/orders/7",
        content=json.dumps({"sku": "a", "quantity": 0, "address": {}, "x": 1}).encode(),
        headers={"Content-Type": "application/json", "X-Tenant": "t1"},
    )
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == "urn:gateway:problem:request-invalid"
    pointers = {(e["location"], e["pointer"]) for e in problem["errors"]}
    assert {("body", "/sku"), ("body", "/quantity"), ("body", "/address")} <= pointers
    assert ("body", "") in pointers  # additionalProperties: x
    assert all(e["message"] for e in problem["errors"])


def test_a_body_that_is_not_json_gets_415_or_400(gw: Gateway) -> None:
    answer = gw.request(
        "POST",
        "/orders/7",
        content=b"sku=abc",
        headers={"Content-Type": "text/plain", "X-Tenant": "t"},
    )
    assert answer.status_code == 415
    assert answer.json()["type"].endswith("unsupported-media-type")
    answer = gw.request(
        "POST",
        "/orders/7",
        content=b"{not json",
        headers={"Content-Type": "application/vnd.shop+json", "X-Tenant": "t"},
    )
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["location"] == "body"


def test_path_parameters_and_headers_are_checked(gw: Gateway) -> None:
    answer = gw.request(
        "POST",
        "/orders/zero",
        content=json.dumps({"sku": "abc", "quantity": 1}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    where = {(e["location"], e["pointer"]) for e in answer.json()["errors"]}
    assert where == {("params", "/shop"), ("headers", "")}


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("limit=10", 200),  # coerced to an integer
        ("limit=10&exact=true&tag=a", 200),  # one tag: an array of one
        ("tag=a&tag=b", 200),
        ("limit=ten", 400),
        ("limit=101", 400),
        ("exact=yes", 400),
        ("tag=a&tag=b&tag=c", 400),
        ("other=1", 400),
        ("limit=1&limit=2", 400),  # twice: an array, and limit is no array
    ],
)
def test_query_strings_are_coerced_where_the_schema_asks(
    gw: Gateway, query: str, status: int
) -> None:
    answer = gw.get(f"/search?{query}")
    assert answer.status_code == status, answer.text
    if status == 400:
        assert answer.json()["errors"][0]["location"] == "query"


def test_a_failing_query_parameter_is_pointed_at(gw: Gateway) -> None:
    errors = gw.get("/search?limit=500").json()["errors"]
    assert errors == [{"location": "query", "pointer": "/limit", "message": errors[0]["message"]}]
    assert "100" in errors[0]["message"]


def test_response_report_mode_passes_and_counts(gw: Gateway) -> None:
    answer = gw.get("/reported/1")
    assert answer.status_code == 200  # the answer passes unchanged
    assert answer.json() == {"id": 1}
    report = gw.admin_get("/validation").json()
    assert report["totals"]["user-reported"] >= 1
    latest = report["violations"][0]
    assert latest["route"] == "user-reported"
    assert latest["mode"] == "report"
    assert latest["errors"][0]["message"].startswith('"name" is a required property')
    metrics = gw.admin_get("/metrics").text
    assert 'gateway_response_invalid_total{route="user-reported"}' in metrics


def test_a_large_body_is_checked_and_quoted_values_are_cut_short(gw: Gateway) -> None:
    """300 KiB: parsed and checked off the event loop; a message quoting a huge
    value stays short."""
    answer = gw.request(
        "POST",
        "/orders/7",
        content=json.dumps({"sku": ["x" * 300_000], "quantity": "lots"}).encode(),
        headers={"Content-Type": "application/json", "X-Tenant": "t1"},
    )
    assert answer.status_code == 400
    errors = answer.json()["errors"]
    assert {e["pointer"] for e in errors} == {"/sku", "/quantity"}
    assert all(len(e["message"]) <= 300 for e in errors)


def test_response_enforce_mode_answers_502(gw: Gateway) -> None:
    answer = gw.get("/enforced", params={"body": '{"id": 1, "secret_field": "s3cr3t"}'})
    assert answer.status_code == 502
    assert answer.json()["type"].endswith("response-invalid")
    assert "s3cr3t" not in answer.text and "secret_field" not in answer.text  # nothing upstream
    good = gw.get("/enforced", params={"body": '{"id": 1, "name": "Ann"}'})
    assert good.status_code == 200
    assert good.json() == {"id": 1, "name": "Ann"}


@pytest.mark.parametrize("how", ["bigjson", "bigchunked"])  # a Content-Length, or none
def test_a_proxied_answer_past_max_response_size_passes_unchecked(gw: Gateway, how: str) -> None:
    """SPEC 3.16: proxy answers are checked up to max_response_size (64 KiB
    here); a larger one passes as it came, even in enforce mode."""
    answer = gw.get(f"/big/{how}")
    assert answer.status_code == 200
    assert len(answer.content) >= 100_000
    assert "name" not in answer.json()  # it would have failed the schema


def test_the_openapi_document_carries_the_schemas(gw: Gateway) -> None:
    doc = gw.get("/_gateway/openapi.json").json()
    post = doc["paths"]["/orders/{shop}"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["address"]["required"] == ["city"]  # the file's $ref inlined
    assert {"400", "415"} <= set(post["responses"])
    search = doc["paths"]["/search"]["get"]
    names = {p["name"]: p for p in search["parameters"]}
    assert names["limit"]["in"] == "query"
    assert names["limit"]["schema"]["maximum"] == 100


@pytest.mark.parametrize(
    ("validate", "files", "message"),
    [
        ("{body: {$ref: missing.json}}", {}, "missing.json"),
        ("{query: {type: wrong}}", {}, "invalid schema"),
        ("{body: {$ref: bad.json}}", {"bad.json": "{not json"}, "not valid JSON"),
        ("{body: {$ref: 'ref.json'}}", {"ref.json": '{"$ref": "#/nowhere"}'}, "nowhere"),
        ("{response: {schema: {}, mode: ignore}}", {}, "mode"),
    ],
)
def test_a_bad_schema_is_a_config_error_at_its_line(
    tmp_path: object, validate: str, files: dict[str, str], message: str
) -> None:
    from pathlib import Path

    directory = Path(str(tmp_path))
    for name, text in files.items():
        (directory / name).write_text(text)
    routes = directory / "routes.yaml"
    routes.write_text(
        "version: 1\nroutes:\n  - name: r\n    path: /r\n"
        f"    validate: {validate}\n    static: {{body: 1}}\n"
    )
    done = manage("check_routes", str(routes))
    assert done.returncode != 0
    assert f"{routes}:5:" in done.stderr + done.stdout
    assert message in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 5000 + b"]" * 5000,  # deeper than the JSON parser goes
        b'{"sku": "abc", "quantity": 1, "address": ' + b'{"city": ' * 500 + b'"x"' + b"}" * 501,
        b"\xff\xfe not utf-8",
        b'{"sku": "abc", "quantity": 1e999}',
    ],
)
def test_hostile_bodies_are_400s_never_500s(gw: Gateway, body: bytes) -> None:
    answer = gw.request(
        "POST",
        "/orders/7",
        content=body,
        headers={"Content-Type": "application/json", "X-Tenant": "t1"},
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["type"] == "urn:gateway:problem:request-invalid"
    assert len(answer.content) < 20_000  # problems quoted, never the whole body


def test_a_hostile_accept_encoding_and_query_are_harmless(gw: Gateway) -> None:
    query = "&".join(f"tag={i}" for i in range(900))  # under the 1,000-field limit
    answer = gw.get(f"/search?{query}", headers={"Accept-Encoding": "gzip;q=0.5, " * 500 + "br"})
    assert answer.status_code == 400  # maxItems: 2
    assert answer.json()["errors"][0]["pointer"] == "/tag"
