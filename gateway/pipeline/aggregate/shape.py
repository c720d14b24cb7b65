"""Pure shaping of one backend's JSON body: target -> allow/deny -> rename.

Field paths are dot-separated. Wherever a path meets a list, the rest of the
path applies to each item. Field trees are compiled once per backend at load
time (`compile_shape`), so a request only walks the body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.dotpath import MISSING, get_field
from gateway.pipeline.aggregate.exchange import Exchange, Next, Stage
from gateway.routes.model import Backend
from gateway.types import Failure

__all__ = ["Shape", "ShapeError", "compile_shape", "shape_body", "shape_stage"]

type FieldTree = dict[str, FieldTree]  # {} at a leaf


class ShapeError(ValueError):
    """The body does not have the shape the backend's config expects."""


@dataclass(frozen=True, slots=True)
class Shape:
    target: tuple[str, ...] = ()
    allow: FieldTree | None = None
    deny: FieldTree | None = None
    rename: tuple[tuple[tuple[str, ...], str], ...] = ()

    @property
    def is_identity(self) -> bool:
        return not (self.target or self.allow or self.deny or self.rename)


def _tree(paths: tuple[tuple[str, ...], ...]) -> FieldTree:
    """[("a",), ("b", "c")] -> {"a": {}, "b": {"c": {}}}; `{}` marks a whole value."""
    root: FieldTree = {}
    for path in sorted(paths, key=len):  # "a" before "a.b": the whole of "a" wins
        node = root
        for i, name in enumerate(path):
            if i == len(path) - 1:
                node[name] = {}
            elif node.get(name) == {}:
                break  # an ancestor is already kept (or removed) whole
            else:
                node = node.setdefault(name, {})
    return root


def compile_shape(backend: Backend) -> Shape:
    return Shape(
        target=backend.target,
        allow=_tree(backend.allow) if backend.allow else None,
        deny=_tree(backend.deny) if backend.deny else None,
        rename=backend.rename,
    )


def _allow(value: Any, tree: FieldTree) -> Any:
    if isinstance(value, list):
        return [_allow(item, tree) for item in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for name, sub in tree.items():
        if name in value:
            child = value[name]
            if not sub:
                out[name] = child
            elif isinstance(child, dict | list):
                out[name] = _allow(child, sub)
    return out


def _deny(value: Any, tree: FieldTree) -> Any:
    if isinstance(value, list):
        return [_deny(item, tree) for item in value]
    if not isinstance(value, dict):
        return value
    out = dict(value)
    for name, sub in tree.items():
        if name not in out:
            continue
        if not sub:
            del out[name]
        else:
            out[name] = _deny(out[name], sub)
    return out


def _rename(value: Any, path: tuple[str, ...], new_name: str) -> Any:
    if isinstance(value, list):
        return [_rename(item, path, new_name) for item in value]
    if not isinstance(value, dict) or path[0] not in value:
        return value
    if len(path) == 1:  # rebuild to keep the field where it was
        return {(new_name if k == path[0] else k): v for k, v in value.items()}
    out = dict(value)
    out[path[0]] = _rename(out[path[0]], path[1:], new_name)
    return out


def shape_body(body: Any, shape: Shape) -> Any:
    """Apply target, allow, deny and rename, in that order. Never mutates `body`."""
    if shape.target:
        body = get_field(body, shape.target)
        if body is MISSING:
            raise ShapeError(f"field {'.'.join(shape.target)!r} is not in the response")
    if shape.allow is not None:
        body = _allow(body, shape.allow)
    if shape.deny is not None:
        body = _deny(body, shape.deny)
    for path, new_name in shape.rename:
        body = _rename(body, path, new_name)
    return body


def shape_stage(shape: Shape, *, must_be_object: bool) -> Stage | None:
    """The `shape` stage, or None when the body goes on as it came."""
    if shape.is_identity and not must_be_object:
        return None

    async def stage(exchange: Exchange, next: Next) -> None:
        outcome = exchange.outcome
        # Shaping builds new objects and lists beside the parsed ones (the
        # values inside are fanout): hold what those cost.
        if not shape.is_identity:
            if not await exchange.fanout.hold.take(outcome.containers):
                outcome.failure = Failure.MEMORY
                return
            try:
                outcome.body = shape_body(outcome.raw, shape)
            except ShapeError as exc:
                outcome.failure, outcome.detail = Failure.SHAPE, f"answered without {exc}"
                return
        if must_be_object and not isinstance(outcome.body, dict):
            outcome.failure = Failure.SHAPE
            outcome.detail = "answered with a body that is not an object (give it a `key`)"
            return
        await next(exchange)

    return stage
