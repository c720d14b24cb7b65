"""Reading parameters as their schema asks, and JSON Pointers
(gateway/policies/validate/request.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.policies.validate.request import collect, is_json, json_pointer, read_parameters
from gateway.policies.validate.schemas import compile_schema

SCHEMA = compile_schema(
    {
        "type": "object",
        "properties": {
            "limit": {"type": "integer"},
            "ratio": {"type": "number"},
            "exact": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "integer"}},
            "name": {"type": ["string", "null"]},
            "either": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        },
        "additionalProperties": {"type": "integer"},
    },
    Path("."),
)


@pytest.mark.parametrize(
    ("pairs", "read"),
    [
        ([("limit", "10")], {"limit": 10}),
        ([("limit", "-3")], {"limit": -3}),
        ([("limit", "1.5")], {"limit": "1.5"}),  # not an integer: the schema says why
        ([("ratio", "1.5")], {"ratio": 1.5}),
        ([("ratio", "2")], {"ratio": 2}),
        ([("ratio", "1e3")], {"ratio": 1000.0}),
        ([("ratio", "nan")], {"ratio": "nan"}),
        ([("ratio", "1e999")], {"ratio": "1e999"}),  # not finite: stays a string
        ([("exact", "true")], {"exact": True}),
        ([("exact", "False")], {"exact": "False"}),
        ([("tags", "1")], {"tags": [1]}),  # once, where the schema asks for an array
        ([("tags", "1"), ("tags", "x")], {"tags": [1, "x"]}),
        ([("limit", "1"), ("limit", "2")], {"limit": [1, 2]}),  # twice: an array
        ([("name", "10")], {"name": "10"}),  # a string is allowed: kept
        ([("either", "4")], {"either": 4}),
        ([("other", "7")], {"other": 7}),  # additionalProperties says integer
    ],
)
def test_read_parameters(pairs: list[tuple[str, str]], read: dict[str, object]) -> None:
    assert read_parameters(pairs, SCHEMA) == read


def test_json_pointers_escape() -> None:
    assert json_pointer([]) == ""
    assert json_pointer(["a/b", "m~n", 0]) == "/a~1b/m~0n/0"


def test_collect_stops_at_twenty() -> None:
    schema = compile_schema({"type": "array", "items": {"type": "string"}}, Path("."))
    errors: list[dict[str, str]] = []
    collect(schema, list(range(50)), "body", errors)
    assert len(errors) == 20
    assert errors[0] == {
        "location": "body",
        "pointer": "/0",
        "message": '0 is not of type "string"',
    }


@pytest.mark.parametrize(
    ("content_type", "json"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("application/vnd.api+json", True),
        ("text/json", False),
        ("application/x-www-form-urlencoded", False),
        ("", False),
    ],
)
def test_is_json(content_type: str, json: bool) -> None:
    assert is_json(content_type) is json
