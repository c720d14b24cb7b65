"""The routes file's keys, declared once.

Each section of the file (the top level, `settings`, an upstream, a route, a
backend, a provider...) is a `Section`: its keys, which of them are required,
and what each value is (`Value`: its JSON Schema, a valid example and an
invalid one). Readers take a section's allowed and required keys from here
(`Section.fields`), and the JSON Schema of the file (`routes/schema.py`) is
generated from the same declarations, so a key cannot be known to one and
not the other. The examples are what the schema/loader agreement test
(tests/routes/test_schema.py) writes into a document, key by key: both must
take the example and both must refuse the invalid value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.routes.reader import Reader
    from gateway.routes.source import Node

__all__ = [
    "BOOL",
    "DURATION",
    "HEADER",
    "HEADERS",
    "INT",
    "NAME",
    "SIZE",
    "STRING",
    "STRINGS",
    "Json",
    "Key",
    "ListOf",
    "MapOf",
    "OneOf",
    "Section",
    "Shape",
    "Value",
    "var_or",
]

type Json = dict[str, Any]

# `${VAR}` may stand for any value: it is replaced when the file loads.
_VAR: Json = {"type": "string", "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"}


def var_or(*schemas: Json) -> Json:
    """Any of `schemas`, or a `${VAR}` that will be replaced by one."""
    return {"anyOf": [*schemas, _VAR]}


@dataclass(frozen=True, slots=True)
class Value:
    """A leaf value: its JSON Schema, a value both the loader and the schema
    take (`example`) and one both refuse (`wrong`)."""

    schema: Json
    example: Any
    wrong: Any

    def with_schema(self, **changes: Any) -> Value:
        return Value({**self.schema, **changes}, self.example, self.wrong)


@dataclass(frozen=True, slots=True)
class ListOf:
    """A list of one shape."""

    item: Shape
    min_items: int = 0

    @property
    def example(self) -> Any:
        return [example_of(self.item)]

    def schema(self) -> Json:
        out: Json = {"type": "array", "items": schema_of(self.item)}
        if self.min_items:
            out["minItems"] = self.min_items
        return out


@dataclass(frozen=True, slots=True)
class MapOf:
    """A mapping of names (written by the operator) to one shape."""

    value: Shape
    example_name: str = "x"

    @property
    def example(self) -> Any:
        return {self.example_name: example_of(self.value)}

    def schema(self) -> Json:
        return {"type": "object", "additionalProperties": schema_of(self.value)}


@dataclass(frozen=True, slots=True)
class OneOf:
    """Exactly one of several sections (the route kinds; the provider types),
    each named for messages and for the agreement test."""

    branches: tuple[tuple[str, Section], ...]

    @property
    def example(self) -> Any:
        return example_of(self.branches[0][1])

    def schema(self) -> Json:
        return {"oneOf": [branch.schema() for _, branch in self.branches]}


@dataclass(frozen=True, slots=True, kw_only=True)
class Key:
    """One key of a section. `example` and `wrong` override the value's (a
    name that must exist elsewhere in the file); `needs` are sibling keys the
    example needs beside it (`scopes` needs `auth`), `drops` siblings it
    cannot stand beside (`sha256` replaces `key`)."""

    name: str
    value: Shape
    required: bool = False
    example: Any = None
    wrong: Any = None
    needs: Mapping[str, Any] = field(default_factory=dict)
    drops: tuple[str, ...] = ()
    nullable: bool = False  # `null` is a value (a policy turned off on one route)

    @property
    def example_value(self) -> Any:
        return self.example if self.example is not None else example_of(self.value)

    @property
    def wrong_value(self) -> Any:
        if self.wrong is not None:
            return self.wrong
        if isinstance(self.value, Value):
            return self.value.wrong
        return "not this"  # a string where a list or mapping belongs


@dataclass(frozen=True, slots=True)
class Section:
    """A mapping with known keys; any other key is an error at its line."""

    keys: tuple[Key, ...]
    extra: Json = field(default_factory=dict)  # more schema (e.g. a oneOf of required keys)
    description: str = ""
    sample: Mapping[str, Any] | None = None  # a valid example, when its required keys are not

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keys)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keys if k.required)

    @property
    def example(self) -> Any:
        if self.sample is not None:
            return dict(self.sample)
        return {k.name: k.example_value for k in self.keys if k.required}

    def key(self, name: str) -> Key:
        return next(k for k in self.keys if k.name == name)

    def plus(self, *keys: Key, extra: Json | None = None) -> Section:
        """This section with more keys (a route of one kind: the common keys,
        the policies' and the kind's)."""
        return Section(
            (*self.keys, *keys), {**self.extra, **(extra or {})}, self.description, self.sample
        )

    def fields(self, r: Reader, node: Node, where: str) -> dict[str, Node] | None:
        """The node's keys (unknown ones and missing required ones reported)."""
        return r.mapping(node, where, allowed=self.names, required=self.required)

    def schema(self) -> Json:
        out: Json = {
            "type": "object",
            "properties": {k.name: _key_schema(k) for k in self.keys},
            "additionalProperties": False,
        }
        if self.required:
            out["required"] = list(self.required)
        if self.description:
            out["description"] = self.description
        out.update(self.extra)
        return out

    def walk(self, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Key]]:
        """Every key below this section, with its path of key names."""
        for key in self.keys:
            path = (*prefix, key.name)
            yield path, key
            for child in sections_in(key.value):
                yield from child.walk(path)


type Shape = Value | Section | ListOf | MapOf | OneOf


def _key_schema(key: Key) -> Json:
    schema = schema_of(key.value)
    return {"anyOf": [schema, {"type": "null"}]} if key.nullable else schema


def schema_of(shape: Shape) -> Json:
    return shape.schema if isinstance(shape, Value) else shape.schema()


def example_of(shape: Shape) -> Any:
    return shape.example


def sections_in(shape: Shape) -> Iterable[Section]:
    """The sections a value holds (for walking every key)."""
    if isinstance(shape, Section):
        return (shape,)
    if isinstance(shape, ListOf):
        return sections_in(shape.item)
    if isinstance(shape, MapOf):
        return sections_in(shape.value)
    if isinstance(shape, OneOf):
        return tuple(section for _, section in shape.branches)
    return ()


# --- the values the file uses everywhere (docs/routes.md "Values") -------------
DURATION = Value(
    {
        **var_or(
            {"type": "number", "minimum": 0},
            {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$"},
        ),
        "description": "250ms, 2s, 1m, 1h, or seconds",
    },
    "2s",
    "soon",
)
SIZE = Value(
    {
        **var_or(
            {"type": "integer", "minimum": 0},
            {"type": "string", "pattern": r"^\s*\d+\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$"},
        ),
        "description": "512KiB, 1MiB, or bytes",
    },
    "1MiB",
    "lots",
)
INT = Value(var_or({"type": "integer", "minimum": 1}), 3, "three")
BOOL = Value(var_or({"type": "boolean"}), True, "yes")
STRING = Value({"type": "string"}, "text", ["a", "list"])
STRINGS = Value({"type": "array", "items": {"type": "string"}}, ["a"], "a")
NAME = Value(
    {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,99}$"}, "name-1", "no such!"
)
HEADER = Value(
    {"type": "string", "pattern": r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$"}, "X-Example", "no header"
)
HEADERS = Value({"type": "array", "items": HEADER.schema}, ["X-Example"], ["no header"])
