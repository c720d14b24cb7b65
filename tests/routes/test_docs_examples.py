"""Every YAML example in docs/routes.md validates against the JSON Schema and
loads (issue 14). An example is a fragment: top-level sections are merged
into a small complete file (the upstreams and providers the examples name),
and the keys of one route are made into a route whose path has the
parameters the example uses."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import yaml

from gateway.routes import parse_route_table
from gateway.routes.schema import routes_schema
from tests.processes import ROOT

VALIDATOR = jsonschema.Draft202012Validator(routes_schema())
SECTIONS = {"version", "settings", "upstreams", "auth", "hooks", "routes"}
OUTLINE = "{...}"  # the top-level outline, with its sections elided

SCAFFOLD: dict[str, Any] = {
    "version": 1,
    "upstreams": {
        name: {"url": f"http://{name}.svc:8080"}
        for name in ("users", "orders", "billing", "catalog", "chat")
    },
    "auth": {
        "partners": {"type": "api_key", "keys": [{"id": "acme", "key": "a-partner-key"}]},
        "staff": {"type": "jwt", "algorithms": ["HS256"], "secret": "s" * 40},
    },
    "routes": [
        {"name": "scaffold", "path": "/scaffold", "backends": [{"upstream": "users", "path": "/"}]}
    ],
}


def examples() -> Iterator[tuple[int, str]]:
    lines = (ROOT / "docs" / "routes.md").read_text().splitlines()
    block: list[str] | None = None
    start = 0
    for number, line in enumerate(lines, 1):
        if line.strip() == "```yaml":
            block, start = [], number
        elif line.startswith("```") and block is not None:
            yield start, "\n".join(block)
            block = None
        elif block is not None:
            block.append(line)


EXAMPLES = list(examples())


def complete(fragment: dict[str, Any]) -> dict[str, Any]:
    """A whole routes file around `fragment`."""
    document = {
        k: (dict(v) if isinstance(v, dict) else list(v))
        for k, v in SCAFFOLD.items()
        if k != "version"
    }
    document["version"] = 1
    if set(fragment) <= SECTIONS:
        for key, value in fragment.items():
            if isinstance(value, dict) and isinstance(document.get(key), dict):
                document[key] = {**document[key], **value}
            else:
                document[key] = value
        return document
    text = yaml.safe_dump(fragment)
    params = sorted(set(re.findall(r"\{(\w+)\}", text)) - {"rest"})  # {user.x}: a body field
    path = "/example" + "".join(f"/{{{p}}}" for p in params)
    if "{rest}" in text:
        path += "/{rest:path}"
    route = {"name": "example", "path": path, **fragment}
    if not {"backends", "proxy", "websocket"} & set(fragment):
        route["backends"] = [{"upstream": "users", "path": "/"}]
    document["routes"] = [route]
    return document


def test_the_reference_has_examples() -> None:
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize(("line", "text"), EXAMPLES, ids=[f"routes.md:{n}" for n, _ in EXAMPLES])
def test_every_example_validates_and_loads(
    line: int, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if OUTLINE in text:
        pytest.skip("the outline of the file's sections (each has an example of its own)")
    for name in set(re.findall(r"\$\{(\w+)\}", text)):
        monkeypatch.setenv(name, "example-value-0123456789")
    monkeypatch.setenv("BACKEND_SIGNING_KEY", "0" * 64)
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "hooks"))
    document = complete(yaml.safe_load(text))
    errors = [e.message for e in VALIDATOR.iter_errors(document)]
    assert errors == [], f"docs/routes.md:{line}: {errors}"
    parse_route_table(yaml.safe_dump(document), f"docs/routes.md:{line}")
    for module in [m for m in sys.modules if m.startswith("acme_hooks")]:
        monkeypatch.delitem(sys.modules, module)
