"""`mirror:` on proxy and aggregate routes (SPEC 3.17): the route's calls
repeated against another upstream, and optionally compared."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from gateway.routes.keys import BOOL, INT, NAME, SIZE, Key, ListOf, Section, Value, var_or
from gateway.routes.kinds import read_upstream_ref
from gateway.routes.model import MirrorSpec
from gateway.routes.reader import Reader
from gateway.routes.source import Node
from gateway.routes.vocabulary import RouteContext

__all__ = ["MIRROR_KEY", "read_mirror"]

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_DOT_PATH = re.compile(r"[^.\s]+(\.[^.\s]+)*")
MIRROR = Section(
    (
        Key(name="upstream", value=NAME, required=True, example="u"),
        Key(
            name="percent",
            value=Value(
                var_or({"type": "number", "exclusiveMinimum": 0, "maximum": 100}), 10, "all"
            ),
        ),
        Key(
            name="methods",
            value=ListOf(Value({"enum": list(_METHODS)}, "GET", "FETCH")),
            example=["GET", "POST"],
        ),
        Key(name="max_in_flight", value=INT),
        Key(name="max_body_size", value=SIZE),
        Key(name="compare", value=BOOL),
        Key(
            name="ignore",
            value=ListOf(Value({"type": "string", "minLength": 1}, "meta.generated_at", 3)),
            example=["meta.generated_at", "items.updated_at"],
        ),
    )
)
MIRROR_KEY = Key(name="mirror", value=MIRROR)


def read_mirror(r: Reader, fields: Mapping[str, Node], ctx: RouteContext) -> MirrorSpec | None:
    """The route's `mirror:`, or None (none given, or a problem reported)."""
    if "mirror" not in fields:
        return None
    where = f"{ctx.where}: mirror"
    found = MIRROR.fields(r, fields["mirror"], where)
    if found is None or "upstream" not in found:
        return None
    upstream = read_upstream_ref(r, found["upstream"], f"{where}.upstream", ctx.upstreams)
    spec = MirrorSpec(upstream=upstream or "")
    values: dict[str, object] = {}
    if "percent" in found:
        node = found["percent"]
        percent = node.value
        if isinstance(percent, str):
            try:
                percent = float(percent)
            except ValueError:
                percent = None
        if (
            isinstance(percent, bool)
            or not isinstance(percent, int | float)
            or not 0 < percent <= 100
        ):
            r.error(node, f"{where}.percent", "a number above 0, at most 100")
        else:
            values["percent"] = float(percent)
    if "methods" in found:
        named = r.strings(found["methods"], f"{where}.methods") or []
        wrong = [m for m in named if m.upper() not in _METHODS]
        if wrong:
            r.error(found["methods"], f"{where}.methods", f"{wrong[0]!r} is not an HTTP method")
        values["methods"] = frozenset(m.upper() for m in named)
    if "max_in_flight" in found:
        values["max_in_flight"] = r.integer(found["max_in_flight"], f"{where}.max_in_flight")
    if "max_body_size" in found:
        values["max_body_size"] = r.size(found["max_body_size"], f"{where}.max_body_size")
    if "compare" in found:
        values["compare"] = r.boolean(found["compare"], f"{where}.compare")
    if "ignore" in found:
        paths = r.strings(found["ignore"], f"{where}.ignore") or []
        for path in paths:
            if not _DOT_PATH.fullmatch(path):
                r.error(found["ignore"], f"{where}.ignore", f"{path!r} is not a dot path (a.b.c)")
        values["ignore"] = tuple(tuple(p.split(".")) for p in paths)
    if upstream is None or any(v is None for v in values.values()):
        return None
    return dataclasses.replace(spec, **values)  # type: ignore[arg-type]  # each read above
