"""Every key the registry declares, one by one: the loader and the JSON Schema
agree on it, and docs/routes.md documents it.

The declarations (gateway/routes/keys.py: the core sections; each kind's and
each policy's, gateway/registry.py) are walked from the top of the file. For
each key, a valid document gets the key's example (with what it needs
beside it): the loader and the schema must both take it; then the key's
invalid value: both must refuse it; every section refuses an unknown key; a
key a route may turn off (`null`) is taken as `null` by both. A key added to
the registry is covered here without a line more.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jsonschema
import pytest
import yaml

from gateway.registry import VOCABULARY, parse_route_table, routes_schema
from gateway.routes import RoutesFileError
from gateway.routes.document import document_section
from gateway.routes.keys import Key, ListOf, MapOf, OneOf, Section, Shape, Value, example_of
from tests.certs import Authority
from tests.processes import ROOT

VALIDATOR = jsonschema.Draft202012Validator(routes_schema())
ROOT_SECTION = document_section(VOCABULARY)

type Location = tuple[str | int, ...]


@dataclass(frozen=True)
class Case:
    """One key of one section, at a place in a valid document."""

    path: str  # for test ids: "routes[proxy].proxy.idle_timeout"
    document: dict[str, Any]  # valid, with the section at `location`
    location: Location
    section: Section
    key: Key


def base_document() -> dict[str, Any]:
    """A valid document with an entry of every kind and provider type: each
    route and provider named after its branch."""
    document: dict[str, Any] = {"version": 1}
    for key in ROOT_SECTION.keys:
        if isinstance(key.value, MapOf) and isinstance(key.value.value, OneOf):
            document[key.name] = {name: example_of(b) for name, b in key.value.value.branches}
        elif isinstance(key.value, ListOf) and isinstance(key.value.item, OneOf):
            document[key.name] = [
                {**example_of(branch), "name": name, "path": f"/{name}"}
                for name, branch in key.value.item.branches
            ]
        elif key.name == "upstreams":
            document[key.name] = example_of(key.value)
    return document


def at(document: Any, location: Location) -> Any:
    for step in location:
        document = document[step]
    return document


def matches(entry: Any, section: Section) -> bool:
    """Is `entry` an instance of `section` (a branch of a oneOf)?"""
    if not isinstance(entry, dict):
        return False
    if not set(entry) <= set(section.names):
        return False
    if not all(k in entry for k in section.required):
        return False
    for key in section.keys:  # a `type: ...` const decides between providers
        schema = key.value.schema if hasattr(key.value, "schema") else None
        if isinstance(schema, dict) and "const" in schema and key.name in entry:
            return bool(entry[key.name] == schema["const"])
    return True


def cases(
    section: Section, document: dict[str, Any], location: Location, path: str
) -> Iterator[Case]:
    for key in section.keys:
        here = f"{path}.{key.name}" if path else key.name
        yield Case(here, document, location, section, key)
        child = copy.deepcopy(document)
        node = at(child, location)
        if key.name not in node:
            node.update(key.needs)
            for dropped in key.drops:
                node.pop(dropped, None)
            node[key.name] = copy.deepcopy(key.example_value)
        yield from nested(key.value, child, (*location, key.name), here)


def nested(shape: Shape, document: dict[str, Any], location: Location, path: str) -> Iterator[Case]:
    value = at(document, location)
    if isinstance(shape, Section):
        yield from cases(shape, document, location, path)
    elif isinstance(shape, ListOf):
        if isinstance(shape.item, OneOf):
            for name, branch in shape.item.branches:
                index = next(i for i, e in enumerate(value) if matches(e, branch))
                yield from cases(branch, document, (*location, index), f"{path}[{name}]")
        else:
            yield from nested(shape.item, document, (*location, 0), f"{path}[0]")
    elif isinstance(shape, MapOf):
        if isinstance(shape.value, OneOf):
            for name, branch in shape.value.branches:
                entry = next(n for n, e in value.items() if matches(e, branch))
                yield from cases(branch, document, (*location, entry), f"{path}.{name}")
        else:
            first = next(iter(value))
            yield from nested(shape.value, document, (*location, first), f"{path}.{first}")


CASES = {case.path: case for case in cases(ROOT_SECTION, base_document(), (), "")}


@pytest.fixture(autouse=True)
def _certificates(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The files `tls:` examples name (certs/ca.pem ...), made for the test,
    in the directory the documents are read from."""
    directory = tmp_path_factory.getbasetemp() / "keys-certs"
    if not (directory / "certs" / "gateway-key.pem").exists():
        authority = Authority(directory / "certs", name="ca")
        issued = authority.issue("gateway", client=True)
        issued.cert.rename(
            directory / "certs" / "gateway.pem"
        ) if issued.cert.name != "gateway.pem" else None
    monkeypatch.chdir(directory)


def with_value(case: Case, value: Any) -> dict[str, Any]:
    document = copy.deepcopy(case.document)
    node = at(document, case.location)
    node.update(copy.deepcopy(dict(case.key.needs)))
    for dropped in case.key.drops:
        node.pop(dropped, None)
    node[case.key.name] = copy.deepcopy(value)
    return document


def loads(document: dict[str, Any]) -> None:
    parse_route_table(yaml.safe_dump(document, sort_keys=False), "r.yaml")


def test_the_base_document_is_valid() -> None:
    document = base_document()
    loads(document)
    assert list(VALIDATOR.iter_errors(document)) == []
    assert len(CASES) > 100  # every key of every section, walked


@pytest.mark.parametrize("path", CASES)
def test_both_take_the_keys_example(path: str) -> None:
    case = CASES[path]
    document = with_value(case, case.key.example_value)
    loads(document)
    assert list(VALIDATOR.iter_errors(document)) == []


REFUSABLE = [
    p for p, c in CASES.items() if not (isinstance(c.key.value, Value) and c.key.value.schema == {})
]


@pytest.mark.parametrize("path", REFUSABLE)
def test_both_refuse_the_keys_invalid_value(path: str) -> None:
    """Every key but those that take any value (a static route's body)."""
    case = CASES[path]
    document = with_value(case, case.key.wrong_value)
    with pytest.raises(RoutesFileError):
        loads(document)
    assert list(VALIDATOR.iter_errors(document)) != []


@pytest.mark.parametrize("path", sorted({c.path.rpartition(".")[0] for c in CASES.values()}))
def test_every_section_refuses_an_unknown_key(path: str) -> None:
    case = next(c for c in CASES.values() if c.path.rpartition(".")[0] == path)
    document = copy.deepcopy(case.document)
    at(document, case.location)["colour"] = "red"
    with pytest.raises(RoutesFileError) as raised:
        loads(document)
    assert "unknown key 'colour'" in str(raised.value)
    assert list(VALIDATOR.iter_errors(document)) != []


@pytest.mark.parametrize("path", [p for p, c in CASES.items() if c.key.nullable])
def test_null_turns_a_policy_off_for_both(path: str) -> None:
    document = with_value(CASES[path], None)
    loads(document)
    assert list(VALIDATOR.iter_errors(document)) == []


def test_docs_routes_md_documents_every_key() -> None:
    """Each key is named in docs/routes.md: in a code span of its prose (the
    tables) or as a key of one of its YAML examples."""
    text = (ROOT / "docs" / "routes.md").read_text()
    blocks = re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.DOTALL)
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    named = " ".join(re.findall(r"`([^`]+)`", prose))
    examples = "\n".join(blocks)

    def documented(name: str) -> bool:
        return bool(
            re.search(rf"(?<![\w-]){name}(?![\w-])", named)
            or re.search(rf"(?<![\w-]){name}:", examples)
        )

    assert sorted({c.key.name for c in CASES.values() if not documented(c.key.name)}) == []
