"""The loaded routes as JSON for the admin listener's /config (SPEC 3.14),
with every secret replaced by "***": API keys and their digests, JWT
secrets, and the values of upstreams' static headers.

Built from the frozen model (what is actually serving), not from the file on
disk (which may hold an edit that was refused). Whatever is bytes in the
model is a digest or a key, so bytes are always shown as "***".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from gateway.routes.model import Hook, PathSegment, RouteTable, Template

__all__ = ["SECRET", "config_document"]

SECRET = "***"  # noqa: S105 - the mask shown instead of a secret
_SECRET_FIELDS = frozenset({"secret", "digest"})  # JWT secrets, API key digests
_SKIPPED = frozenset({"segments", "line"})  # derived from `path`, or where it was written


def config_document(table: RouteTable) -> dict[str, Any]:
    return {
        "source": table.source,
        "settings": _plain(table.settings),
        "upstreams": {name: _upstream(u) for name, u in table.upstreams.items()},
        "auth": {name: _plain(p) for name, p in table.auth.items()},
        "hooks": _plain(table.hooks),
        "routes": [_route(r) for r in table.routes],
    }


def _upstream(upstream: Any) -> dict[str, Any]:
    out: dict[str, Any] = _plain(upstream)
    out["headers"] = {name: SECRET for name, _ in upstream.headers}
    return out


def _route(route: Any) -> dict[str, Any]:
    out: dict[str, Any] = _plain(route)
    kind = route.kind
    out["kind"] = {"type": type(kind).__name__.lower(), **out.pop("kind")}
    return out


def _plain(value: Any, name: str = "") -> Any:
    if name in _SECRET_FIELDS and value is not None:
        return SECRET
    if isinstance(value, bytes | bytearray):
        return SECRET
    if isinstance(value, Template):
        return value.source
    if isinstance(value, Hook):
        return value.name
    if isinstance(value, PathSegment):
        return value.literal
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: _plain(getattr(value, field.name), field.name)
            for field in dataclasses.fields(value)
            if field.name not in _SKIPPED and not field.name.startswith("_")
        }
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, frozenset | set):
        return sorted(_plain(v) for v in value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)
