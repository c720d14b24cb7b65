"""Every YAML example of the README and docs/ parses, and every one that is
part of a routes file validates against the JSON Schema and loads. An
example is a fragment: top-level sections are merged into a small complete
file (the upstreams and providers the examples name), the keys of one route
are made into a route whose path has the parameters the example uses, and
elisions (`[...]`, `{...}`, `# ...`) are left out. Examples of other files
(Kubernetes manifests, kustomizations) only have to parse."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from gateway.registry import parse_route_table, routes_schema
from tests.certs import Authority
from tests.processes import ROOT

VALIDATOR = jsonschema.Draft202012Validator(routes_schema())
SECTIONS = {"version", "settings", "upstreams", "auth", "hooks", "routes"}
OUTLINE = "{...}"  # the top-level outline, with its sections elided

SCAFFOLD: dict[str, Any] = {
    "version": 1,
    "upstreams": {
        name: {"url": f"http://{name}.svc:8080"}
        for name in ("users", "orders", "billing", "catalog", "chat", "feed")
    },
    "auth": {
        "partners": {"type": "api_key", "keys": [{"id": "acme", "key": "a-partner-key"}]},
        "staff": {"type": "jwt", "algorithms": ["HS256"], "secret": "s" * 40},
    },
    "routes": [
        {"name": "scaffold", "path": "/scaffold", "backends": [{"upstream": "users", "path": "/"}]}
    ],
}


DOCUMENTS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
ELIDED = "..."


def examples() -> Iterator[tuple[str, str]]:
    """(`file:line`, the YAML) of every ```yaml block (indented ones too)."""
    for document in DOCUMENTS:
        lines = (ROOT / document).read_text().splitlines()
        block: list[str] | None = None
        start, indent = 0, 0
        for number, line in enumerate(lines, 1):
            if line.strip() == "```yaml":
                block, start, indent = [], number, len(line) - len(line.lstrip())
            elif line.strip().startswith("```") and block is not None:
                yield f"{document}:{start}", "\n".join(block)
                block = None
            elif block is not None:
                block.append(line[indent:])


EXAMPLES = list(examples())


def without_elisions(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_elisions(v) for k, v in value.items() if k != ELIDED}
    if isinstance(value, list):
        return [without_elisions(v) for v in value if v != ELIDED]
    return value


KEY_SOURCES = ("secret", "jwks_url", "public_key")  # a JWT provider has exactly one


def merged(section: Any, extra: Any) -> Any:
    """A section with the example's entries; an entry the scaffold has too
    takes the scaffold's keys the example left out (`# ...`)."""
    if not (isinstance(section, dict) and isinstance(extra, dict)):
        return extra
    out = dict(section)
    for name, entry in extra.items():
        base = section.get(name)
        if isinstance(base, dict) and isinstance(entry, dict):
            if any(k in entry for k in KEY_SOURCES):
                base = {k: v for k, v in base.items() if k not in KEY_SOURCES}
            if "targets" in entry:  # an upstream has url or targets
                base = {k: v for k, v in base.items() if k != "url"}
            entry = {**base, **entry}
        out[name] = entry
    return out


def is_routes_fragment(fragment: Any) -> bool:
    route_keys = {"name", "path", "backends", "proxy", "websocket", "stream", "hooks"}
    return isinstance(fragment, dict) and bool(
        set(fragment) <= SECTIONS or set(fragment) & route_keys
    )


def complete(fragment: dict[str, Any]) -> dict[str, Any]:
    """A whole routes file around `fragment`."""
    document: dict[str, Any] = {
        k: (dict(v) if isinstance(v, dict) else list(v))
        for k, v in SCAFFOLD.items()
        if k != "version"
    }
    document["version"] = 1
    if set(fragment) <= SECTIONS:
        for key, value in fragment.items():
            document[key] = merged(document.get(key), value)
        for route in document["routes"]:
            if (
                not {"backends", "proxy", "websocket", "static", "grpc"} & set(route)
                or route.get("backends") == []
            ):
                route["backends"] = [{"upstream": "users", "path": "/"}]
        return document
    text = yaml.safe_dump(fragment)
    params = sorted(set(re.findall(r"\{(\w+)\}", text)) - {"rest"})  # {user.x}: a body field
    path = "/example" + "".join(f"/{{{p}}}" for p in params)
    if "{rest}" in text:
        path += "/{rest:path}"
    route = {"name": "example", "path": path, **fragment}
    if not {"backends", "proxy", "websocket", "static", "grpc"} & set(fragment):
        route["backends"] = [{"upstream": "users", "path": "/"}]
    document["routes"] = [route]
    return document


def with_certificates(document: dict[str, Any], directory: Path) -> None:
    """The files an upstream's `tls:` names, made for the test (where the
    example says certs/ca.pem, the loader reads a real certificate)."""
    for upstream in document.get("upstreams", {}).values():
        tls = upstream.get("tls") if isinstance(upstream, dict) else None
        if not isinstance(tls, dict) or not {"ca", "cert", "key"} & set(tls):
            continue
        authority = Authority(directory / "pki", name="ca")
        issued = authority.issue("client", client=True)
        files = {"ca": authority.cert, "cert": issued.cert, "key": issued.key}
        for key, path in files.items():
            if key in tls:
                tls[key] = str(path)


def test_the_reference_has_examples() -> None:
    assert len([e for e, _ in EXAMPLES if e.startswith("docs/routes.md")]) >= 8
    assert [e for e, _ in EXAMPLES if e.startswith("README.md")]


@pytest.mark.parametrize(("line", "text"), EXAMPLES, ids=[where for where, _ in EXAMPLES])
def test_every_example_validates_and_loads(
    line: str, text: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    parsed = yaml.safe_load(text)  # every example parses, whatever it is
    if OUTLINE in text:
        return  # the outline of the file's sections (each has an example of its own)
    if not is_routes_fragment(parsed):
        return  # a Kubernetes manifest, a kustomization: parsing is all
    for name in set(re.findall(r"\$\{(\w+)\}", text)):
        monkeypatch.setenv(name, "example-value-0123456789")
    monkeypatch.setenv("BACKEND_SIGNING_KEY", "0" * 64)
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "hooks"))
    document = complete(without_elisions(parsed))
    with_certificates(document, tmp_path)
    errors = [e.message for e in VALIDATOR.iter_errors(document)]
    assert errors == [], f"{line}: {errors}"
    parse_route_table(yaml.safe_dump(document), line)
    for module in [m for m in sys.modules if m.startswith("acme_hooks")]:
        monkeypatch.delitem(sys.modules, module)
