"""The envelope's parts are written by the layers that own them
(gateway/envelope.py says which): this test reads every assignment to an
envelope's attribute in gateway/ and fails on one made elsewhere."""

from __future__ import annotations

import ast

from tests.processes import ROOT

# Who may write each part of an envelope, by module prefix.
OWNERS = {
    "caller": ("gateway.policies.auth",),
    "hooked": ("gateway.pipeline.hooks",),
    "mirror": ("gateway.policies.mirror",),  # the kinds only append to its calls
    "log": ("gateway.pipeline",),  # and its fields: the route's kind
    "live": ("gateway.edge", "gateway.observe.accesslog"),  # counted, then logged
}
EDGE = ("gateway.edge",)  # everything else of an envelope is the edge's


def written() -> list[tuple[str, str, int]]:
    """(module, envelope attribute, line) of every assignment like
    `envelope.x = ...` or `envelope.log.x = ...` in gateway/."""
    found = []
    for path in ROOT.glob("gateway/**/*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = [t for target in node.targets for t in _flat(target)]
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            for target in targets:
                if (attribute := _envelope_attribute(target)) is not None:
                    found.append((module, attribute, target.lineno))
    return found


def _flat(target: ast.expr) -> list[ast.expr]:
    if isinstance(target, ast.Tuple):
        return [t for element in target.elts for t in _flat(element)]
    return [target]


def _envelope_attribute(target: ast.expr) -> str | None:
    """`envelope.x` or `envelope.log.x` (also `call.envelope.x`): its part ("x", "log")."""
    if not isinstance(target, ast.Attribute):
        return None
    owner = target.value
    if _is_envelope(owner):
        return target.attr
    if isinstance(owner, ast.Attribute) and _is_envelope(owner.value):
        return owner.attr
    return None


def _is_envelope(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "envelope") or (
        isinstance(node, ast.Attribute) and node.attr == "envelope"
    )


def test_each_part_of_an_envelope_is_written_by_its_owner() -> None:
    found = written()
    assert len(found) > 10  # the walker sees the writes
    strays = [
        f"{module}:{line} writes envelope.{attribute}"
        for module, attribute, line in found
        if not module.startswith(OWNERS.get(attribute, EDGE))
    ]
    assert strays == []
