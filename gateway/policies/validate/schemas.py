"""A `validate` schema, read and compiled when the routes file loads.

A schema is written inline or as `{$ref: FILE}`, a JSON (or YAML) file
relative to the routes file; `$ref`s inside it resolve relative to the file
that holds them. Every file is read, every reference resolved and the
schema compiled (JSON Schema 2020-12, jsonschema-rs) at load: a missing
file, a reference that does not resolve or an invalid schema is a config
error at the line of the key, never a failure at request time. Nothing is
fetched over the network.

What a compiled schema keeps for requests: the validator, and how each
named property's strings are read (`Coercion`), worked out from the
schema with its references inlined (the same inlined schema goes into the
OpenAPI document).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jsonschema_rs
import yaml

__all__ = ["Coercion", "CompiledSchema", "SchemaError", "compile_schema"]

_MAX_FILE = 4 * 1024 * 1024


class SchemaError(Exception):
    """Why a schema cannot be used (a sentence for the config error)."""


@dataclass(frozen=True, slots=True)
class Coercion:
    """How a string parameter is read: as an array (of `items`) or a scalar type."""

    array: bool = False
    scalar: str = "string"  # string, integer, number, boolean


_STRING = Coercion()


@dataclass(frozen=True, slots=True, eq=False)
class CompiledSchema:
    validator: Any  # jsonschema_rs.Draft202012Validator
    inlined: dict[str, Any]  # references inlined: for OpenAPI and the coercions
    properties: Mapping[str, Coercion] = field(default_factory=dict)
    other: Coercion = _STRING  # names the schema does not list (additionalProperties)

    def coercion(self, name: str) -> Coercion:
        return self.properties.get(name, self.other)


def compile_schema(schema: Any, base: Path, files: set[Path] | None = None) -> CompiledSchema:
    """`schema` compiled, with relative references read from `base` (each
    file read is added to `files`); SchemaError if it cannot be."""
    if not isinstance(schema, dict | bool):
        raise SchemaError("a schema is a mapping (or true/false)")
    base_uri = base.absolute().as_uri() + "/"  # through symlinks, as mounted
    read = _read_file if files is None else _recording(files)
    try:
        validator = jsonschema_rs.Draft202012Validator(
            schema, base_uri=base_uri, retriever=read, validate_formats=True
        )
        inlined = jsonschema_rs.dereference(
            schema, base_uri=base_uri, retriever=read, draft=jsonschema_rs.Draft202012
        )
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as exc:
        raise SchemaError(_first_line(str(exc))) from None
    if not isinstance(inlined, dict):
        inlined = {} if inlined is True else {"not": {}}
    properties = {
        name: _coercion(sub)
        for name, sub in (inlined.get("properties") or {}).items()
        if isinstance(sub, dict)
    }
    extra = inlined.get("additionalProperties")
    other = _coercion(extra) if isinstance(extra, dict) else _STRING
    return CompiledSchema(validator, inlined, properties, other)


def _coercion(schema: dict[str, Any]) -> Coercion:
    types = _types(schema)
    if "array" in types:
        items = schema.get("items")
        scalar = _scalar(_types(items)) if isinstance(items, dict) else "string"
        return Coercion(array=True, scalar=scalar)
    return Coercion(scalar=_scalar(types))


def _types(schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [k for k in kind if isinstance(k, str)]
    for combined in ("anyOf", "oneOf", "allOf"):  # `type` one level down
        options = schema.get(combined)
        if isinstance(options, list):
            return [t for option in options if isinstance(option, dict) for t in _types(option)]
    return []


def _scalar(types: list[str]) -> str:
    if "string" in types or not types:
        return "string"
    for kind in ("integer", "number", "boolean"):
        if kind in types:
            return kind
    return "string"


def _recording(files: set[Path]) -> Callable[[str], Any]:
    def read(uri: str) -> Any:
        parts = urlsplit(uri)
        if parts.scheme == "file":
            files.add(Path(unquote(parts.path)))
        return _read_file(uri)

    return read


def _read_file(uri: str) -> Any:
    """A referenced schema: a local file only (JSON, or YAML by its suffix).
    A file many routes share is read and parsed once while it is unchanged."""
    parts = urlsplit(uri)
    if parts.scheme != "file":
        raise ValueError(f"{uri}: only files beside the routes file can be referenced")
    path = Path(unquote(parts.path))
    try:
        status = path.stat()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    return _parsed(path, status.st_mtime_ns, status.st_size)


@lru_cache(maxsize=64)
def _parsed(path: Path, mtime: int, size: int) -> Any:
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_FILE + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > _MAX_FILE:
        raise ValueError(f"{path} is larger than {_MAX_FILE} bytes")
    try:
        if path.suffix in (".yaml", ".yml"):
            return yaml.safe_load(data)
        return json.loads(data)
    except (ValueError, yaml.YAMLError) as exc:
        raise ValueError(
            f"{path} is not valid {'YAML' if path.suffix != '.json' else 'JSON'}: {exc}"
        ) from None


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "invalid schema"
    return line.replace("is not present in a registry and retrieving it failed: ", "")
