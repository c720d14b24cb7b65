"""Layers point down only: no module imports one of a higher layer, whether
at the top, inside a function or under `TYPE_CHECKING` (the README's
architecture section draws the same picture). Modules of one layer may
import each other.

Every module of gateway/ and config/ must have a layer here: a new one that
is not placed fails the test, so the picture stays whole.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.processes import ROOT

# Bottom to top. A name covers the module and, for a package, everything in it
# (the longest name that fits decides).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("vocabulary", ("gateway.types",)),
    (
        "foundation",
        (
            "gateway",
            "gateway.errors",
            "gateway.dotpath",
            "gateway.credentials",
            "gateway.router",
            "gateway.routes",
            "gateway.hooks",
            "gateway.asgi",
            "gateway.responses",
            "gateway.lifecycle",
            "gateway.observe",
            "gateway.observe.metrics",
            "gateway.observe.logs",
            "gateway.observe.trace",
            "gateway.observe.otlp",
            "gateway.observe.export",
            "gateway.observe.live",
            "gateway.observe.levels",
            "gateway.observe.configview",
        ),
    ),
    ("upstream", ("gateway.upstream",)),
    ("stores", ("gateway.stores", "gateway.runtime")),
    ("envelope", ("gateway.envelope",)),
    ("stages", ("gateway.stack", "gateway.policies", "gateway.pipeline")),
    ("registry", ("gateway.registry", "gateway.assembly", "gateway.serving")),
    (
        "edge",
        (
            "gateway.edge",
            "gateway.apps",
            "gateway.management",
            "gateway.observe.accesslog",
            "gateway.observe.dashboard",
            "gateway.observe.readiness",
        ),
    ),
    ("entry", ("gateway.demo", "config")),
)


def layer_of(module: str) -> int:
    best, found = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), index
    return found


def modules() -> dict[str, Path]:
    found = {}
    for path in [*ROOT.glob("gateway/**/*.py"), *ROOT.glob("config/*.py")]:
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imported(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """Every gateway/config module `path` imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in known else base)
    return {m for m in out if m.split(".")[0] in ("gateway", "config")}


def test_every_module_has_a_layer() -> None:
    unplaced = [name for name in modules() if layer_of(name) < 0]
    assert unplaced == []


def test_no_module_imports_a_higher_layer() -> None:
    known = modules()
    upward = []
    for name, path in sorted(known.items()):
        mine = layer_of(name)
        for target in sorted(imported(path, name, known)):
            theirs = layer_of(target)
            if theirs > mine:
                upward.append(f"{name} ({LAYERS[mine][0]}) imports {target} ({LAYERS[theirs][0]})")
    assert upward == []


def test_the_walker_sees_imports_under_type_checking_and_in_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from gateway.assembly import Gateway\n"
        "def f():\n    from gateway.edge import views\n"
        "from . import sibling\n"
    )
    found = imported(module, "gateway.routes.m", modules())
    assert {"gateway.assembly", "gateway.edge.views", "gateway.routes"} <= found
