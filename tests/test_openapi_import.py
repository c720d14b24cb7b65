"""gateway/openapi_import.py: OpenAPI schemas as JSON Schema 2020-12, the
components a route needs, what is skipped and why, names, servers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.openapi_import import OpenApiImportError, import_openapi
from gateway.policies import validate
from gateway.registry import load_route_table


def spec(paths: dict[str, Any], version: str = "3.0.3", **extra: Any) -> dict[str, Any]:
    return {"openapi": version, "info": {"title": "t", "version": "1"}, "paths": paths, **extra}


def body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def test_openapi_3_0_schemas_become_2020_12() -> None:
    doc = spec(
        {
            "/a": {
                "post": {
                    "operationId": "make",
                    "requestBody": body(
                        {
                            "type": "object",
                            "properties": {
                                "n": {"type": "integer", "minimum": 0, "exclusiveMinimum": True},
                                "s": {"type": "string", "nullable": True, "example": "x"},
                                "e": {"type": "string", "enum": ["a"], "nullable": True},
                            },
                        }
                    ),
                }
            }
        }
    )
    route = import_openapi(doc, "u").document["routes"][0]
    properties = route["validate"]["body"]["properties"]
    assert properties["n"] == {"type": "integer", "exclusiveMinimum": 0}
    assert properties["s"] == {"type": ["string", "null"], "examples": ["x"]}
    assert properties["e"]["enum"] == ["a", None]


def test_components_are_inlined_or_referenced_from_a_file() -> None:
    doc = spec(
        {"/pets": {"post": {"requestBody": body({"$ref": "#/components/schemas/Pet"})}}},
        components={
            "schemas": {
                "Pet": {
                    "type": "object",
                    "properties": {"tag": {"$ref": "#/components/schemas/Tag"}},
                },
                "Tag": {"type": "string"},
                "Unused": {"type": "number"},
            }
        },
    )
    inlined = import_openapi(doc, "u").document["routes"][0]["validate"]["body"]
    assert inlined["$ref"] == "#/$defs/Pet"
    assert set(inlined["$defs"]) == {"Pet", "Tag"}
    assert inlined["$defs"]["Pet"]["properties"]["tag"] == {"$ref": "#/$defs/Tag"}
    filed = import_openapi(doc, "u", schemas_file="s.json")
    assert filed.document["routes"][0]["validate"]["body"] == {"$ref": "s.json#/$defs/Pet"}
    assert set(filed.defs) == {"Pet", "Tag"}  # what the routes reach, not Unused


def test_parameters_by_place_with_path_item_and_referenced_ones() -> None:
    doc = spec(
        {
            "/items/{id}": {
                "parameters": [{"$ref": "#/components/parameters/id"}],
                "get": {
                    "parameters": [
                        {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                        {
                            "name": "X-Tenant",
                            "in": "header",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {"name": "Accept", "in": "header", "schema": {"type": "string"}},
                        {"name": "session", "in": "cookie", "schema": {"type": "string"}},
                    ]
                },
            }
        },
        components={
            "parameters": {
                "id": {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
            }
        },
    )
    validate = import_openapi(doc, "u").document["routes"][0]["validate"]
    assert validate["params"] == {
        "type": "object",
        "properties": {"id": {"type": "integer"}},
        "required": ["id"],
    }
    assert validate["query"] == {"type": "object", "properties": {"limit": {"type": "integer"}}}
    assert validate["headers"]["properties"] == {"x-tenant": {"type": "string"}}  # Accept ignored
    assert validate["headers"]["required"] == ["x-tenant"]


@pytest.mark.parametrize(
    ("request_body", "checked"),
    [
        (body({"type": "object"}), True),
        ({"content": {"application/json": {"schema": {"type": "object"}}}}, False),  # optional
        ({"required": True, "content": {"multipart/form-data": {"schema": {}}}}, False),
        (
            {
                "required": True,
                "content": {"application/json": {"schema": {}}, "text/plain": {"schema": {}}},
            },
            False,  # a text body is allowed too: a JSON-only check would refuse it
        ),
    ],
)
def test_only_required_json_only_bodies_are_checked(
    request_body: dict[str, Any], checked: bool
) -> None:
    route = import_openapi(spec({"/a": {"put": {"requestBody": request_body}}}), "u").document[
        "routes"
    ][0]
    assert ("body" in route.get("validate", {})) is checked


def test_what_cannot_be_a_route_is_skipped_with_its_reason() -> None:
    doc = spec(
        {
            "/files/{name}.json": {"get": {}},
            "/by/{kebab-name}": {"get": {}},
            "/a/{x}": {"get": {"operationId": "first"}},
            "/a/{y}": {"get": {"operationId": "second"}, "delete": {"operationId": "first"}},
        }
    )
    imported = import_openapi(doc, "u")
    # "first" names two operations: neither takes it (names from operationId where unique)
    assert [r["name"] for r in imported.document["routes"]] == ["get-a-x", "delete-a-y"]
    reasons = "\n".join(imported.skipped)
    assert "GET /files/{name}.json: the segment" in reasons
    assert "'kebab-name' cannot be" in reasons
    assert "GET /a/{y}: another operation serves this path and method" in reasons


def test_the_first_absolute_server_is_the_upstream_with_its_path_prefixed() -> None:
    doc = spec(
        {"/x": {"get": {}}},
        servers=[
            {"url": "/relative"},
            {"url": "https://{region}.example.com/v2", "variables": {"region": {"default": "eu"}}},
        ],
    )
    document = import_openapi(doc, "my-api", prefix="/api/").document
    assert document["upstreams"]["my-api"]["url"] == "${MY_API_URL:-https://eu.example.com}"
    assert document["routes"][0]["path"] == "/api/x"
    assert document["routes"][0]["proxy"]["path"] == "/v2/x"


@pytest.mark.parametrize(
    "document",
    [
        {"openapi": "3.1.0", "paths": []},
        {"openapi": "3.0.0", "paths": {}, "components": []},
    ],
)
def test_a_document_of_the_wrong_shape_is_refused(document: dict[str, Any]) -> None:
    with pytest.raises(OpenApiImportError):
        import_openapi(document, "u")


def test_a_malformed_operation_is_skipped_not_a_crash() -> None:
    doc = spec(
        {"/a": {"get": {"parameters": "oops", "requestBody": []}, "post": {"parameters": [7]}}}
    )
    imported = import_openapi(doc, "u")
    assert [r["methods"] for r in imported.document["routes"]] == [["GET"], ["POST"]]


def test_only_openapi_3_is_read() -> None:
    with pytest.raises(OpenApiImportError, match=r"swagger|openapi: missing"):
        import_openapi({"swagger": "2.0", "paths": {}}, "u")


def test_dollars_survive_the_routes_files_variables(tmp_path: Path) -> None:
    """`${...}` in a description or a pattern is text, not an environment variable."""
    doc = spec(
        {
            "/a": {
                "get": {
                    "description": "costs ${price} in $USD, $$ too",
                    "parameters": [
                        {
                            "name": "q",
                            "in": "query",
                            "schema": {"type": "string", "pattern": "^[a-z]+$"},
                        }
                    ],
                }
            }
        }
    )
    routes = import_openapi(doc, "u").document["routes"]
    text = "version: 1\nupstreams: {u: {url: 'http://u'}}\nroutes:\n" + yaml.safe_dump(routes)
    path = tmp_path / "routes.yaml"
    path.write_text(text)
    route = load_route_table(path).routes[0]
    assert route.description == "costs ${price} in $USD, $$ too"
    rules = validate.OPTION.of(route)
    assert rules is not None and rules.query is not None
    assert rules.query.inlined["properties"]["q"]["pattern"] == "^[a-z]+$"
