"""Schemas compiled at load (gateway/policies/validate/schemas.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.policies.validate.schemas import Coercion, SchemaError, compile_schema


def test_file_references_resolve_relative_to_their_file(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "order.json").write_text(
        json.dumps({"type": "object", "properties": {"item": {"$ref": "item.yaml"}}})
    )
    (tmp_path / "schemas" / "item.yaml").write_text("type: object\nrequired: [sku]\n")
    compiled = compile_schema({"$ref": "schemas/order.json"}, tmp_path)
    assert compiled.validator.is_valid({"item": {"sku": "a"}})
    assert not compiled.validator.is_valid({"item": {}})
    assert compiled.inlined["properties"]["item"]["required"] == ["sku"]


@pytest.mark.parametrize(
    ("schema", "files", "message"),
    [
        ({"$ref": "nope.json"}, {}, "No such file"),
        ({"$ref": "bad.json"}, {"bad.json": "{"}, "not valid JSON"),
        ({"$ref": "bad.yaml"}, {"bad.yaml": "a: [\n"}, "not valid YAML"),
        ({"$ref": "https://example.com/s.json"}, {}, "only files"),
        ({"type": "nonsense"}, {}, "nonsense"),
        ("a string", {}, "a mapping"),
        ({"$ref": "#/$defs/missing"}, {}, "missing"),
    ],
)
def test_what_cannot_be_compiled(
    tmp_path: Path, schema: object, files: dict[str, str], message: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(SchemaError, match=message):
        compile_schema(schema, tmp_path)


def test_coercions_come_from_the_inlined_schema(tmp_path: Path) -> None:
    (tmp_path / "limit.json").write_text('{"type": "integer"}')
    compiled = compile_schema(
        {"properties": {"limit": {"$ref": "limit.json"}, "tags": {"type": "array"}}}, tmp_path
    )
    assert compiled.coercion("limit") == Coercion(scalar="integer")
    assert compiled.coercion("tags") == Coercion(array=True)
    assert compiled.coercion("else") == Coercion()


def test_boolean_schemas() -> None:
    assert compile_schema(True, Path(".")).validator.is_valid({"any": 1})
    assert not compile_schema(False, Path(".")).validator.is_valid({})
