"""`hooks:` (top level and per route): names resolved to `async def`s when the
file loads (SPEC 3.12).

A name is "module.path:attribute" (the attribute may be dotted). The module is
imported unless it already was: a reload resolves names again but runs no
module twice, so new hook code needs a restart. A name that does not import,
is not an attribute of its module, or is not an `async def` is an error at its
own line, with the reason in one line (never a traceback).
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from typing import Any

from gateway.routes.keys import Key, ListOf, Section, Value
from gateway.routes.model import NO_HOOKS, Hook, Hooks
from gateway.routes.reader import Reader, did_you_mean
from gateway.routes.source import Node

__all__ = ["STAGES", "hooks_section", "read_hooks"]

STAGES = ("request", "backend", "response")
_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_HOOK = Value(
    {"type": "string", "pattern": r"^[\w.]+:[\w.]+$"}, "gateway.hooks.testing:noop", "no hook"
)


def hooks_section(stages: tuple[str, ...] = STAGES) -> Section:
    """`hooks:` where `stages` apply (aggregate routes and the top level: all three)."""
    return Section(tuple(Key(name=stage, value=ListOf(_HOOK)) for stage in stages))


def read_hooks(r: Reader, node: Node, where: str, stages: tuple[str, ...] = STAGES) -> Hooks:
    """The hooks under `node`; a stage outside `stages` is an error."""
    fields = hooks_section().fields(r, node, where)
    if not fields:
        return NO_HOOKS
    found: dict[str, tuple[Hook, ...]] = {}
    for stage, listed in fields.items():
        here = f"{where}.{stage}"
        if stage not in stages:
            r.error(listed, here, "applies to aggregate (backends) routes only")
            continue
        hooks = []
        for item in r.listing(listed, here) or []:
            name = r.string(item, here)
            if name is None:
                continue
            func, problem = resolve(name)
            if func is None:
                r.error(item, here, problem)
            else:
                hooks.append(Hook(name, func, item.line))
        found[stage] = tuple(hooks)
    return Hooks(**found)


def resolve(name: str) -> tuple[Any, str]:
    """(the async function, "") or (None, why not)."""
    if not _NAME.fullmatch(name):
        return None, f"{name!r}: expected 'module.path:attribute'"
    module_name, _, attribute = name.partition(":")
    module = sys.modules.get(module_name)
    if module is None:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # anything a module's import can raise
            return None, f"{name!r}: cannot import {module_name!r}: {_one_line(exc)}"
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            hint = did_you_mean(part, [n for n in dir(target) if not n.startswith("_")])
            return None, f"{name!r}: module {module_name!r} has no attribute {attribute!r}{hint}"
    if not inspect.iscoroutinefunction(target):
        return None, f"{name!r}: not an async def"
    return target, ""


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
