"""One entry of `routes:`: what every route has (name, path, methods, deadline,
body limit, hooks, documentation), the keys of the policies it uses (each read
by its policy's `Option`), and exactly one kind, read by that kind's reader
(the registered kinds: aggregate.py, proxy.py, wsroute.py)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from gateway.routes.hooks import hooks_section, read_hooks
from gateway.routes.keys import DURATION, NAME, SIZE, STRING, STRINGS, Key, Section, Value
from gateway.routes.model import NO_HOOKS, GatewaySettings, Route
from gateway.routes.reader import NAME as NAME_PATTERN
from gateway.routes.reader import Reader
from gateway.routes.source import Node
from gateway.routes.templates import parse_route_path
from gateway.routes.vocabulary import KindReader, RouteContext, Vocabulary

__all__ = ["ROUTE", "read_route", "route_sections"]

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# What every route has, whatever its kind and its policies.
ROUTE = Section(
    (
        Key(name="name", value=NAME, required=True, example="renamed"),
        Key(
            name="path",
            value=Value({"type": "string", "pattern": "^/"}, "/example", "example"),
            required=True,
        ),
        Key(
            name="methods",
            value=Value({"type": "array", "items": {"enum": list(_METHODS)}}, ["GET"], ["FETCH"]),
        ),
        Key(name="timeout", value=DURATION),
        Key(name="max_body_size", value=SIZE),
        Key(name="summary", value=STRING),
        Key(name="description", value=STRING),
        Key(name="tags", value=STRINGS),
    )
)
_RESERVED = ("/healthz", "/readyz", "/metrics")


def route_sections(vocabulary: Vocabulary) -> tuple[tuple[str, Section], ...]:
    """A route of each kind, as the schema has it: the common keys, its hook
    stages, every policy's keys and the kind's own (its first one required)."""
    policy_keys = [
        replace(key, nullable=True) if option.in_settings else key
        for option in vocabulary.options
        for key in option.keys
    ]
    return tuple(
        (
            kind.name,
            _common(kind).plus(
                Key(name="hooks", value=hooks_section(kind.hook_stages)),
                *policy_keys,
                replace(kind.keys[0], required=True),
                *kind.keys[1:],
            ),
        )
        for kind in vocabulary.kinds
    )


def _common(kind: KindReader) -> Section:
    """ROUTE as a kind has it: `path` optional when the kind gives a default
    one, `methods` those the kind serves."""
    keys = []
    for key in ROUTE.keys:
        if key.name == "path" and kind.default_path is not None:
            key = replace(key, required=False)
        elif key.name == "methods" and set(kind.methods) != set(_METHODS):
            schema = {"type": "array", "items": {"enum": list(kind.methods)}}
            key = replace(key, value=Value(schema, [kind.methods[0]], ["FETCH"]))
        keys.append(key)
    return Section(tuple(keys))


def read_route(
    r: Reader,
    index: int,
    node: Node,
    settings: GatewaySettings,
    names: Mapping[str, Collection[str]],
    vocabulary: Vocabulary,
) -> Route | None:
    """One entry of `routes:`; None (with problems recorded) when it is unusable."""
    where = f"routes[{index}]"
    allowed = (
        *ROUTE.names,
        "hooks",
        *(key for option in vocabulary.options for key in option.names),
        *(key.name for kind in vocabulary.kinds for key in kind.keys),
    )
    required = [key for key in ROUTE.required if key != "path"]  # a kind may give a default
    fields = r.mapping(node, where, allowed=allowed, required=required)
    if fields is None:
        return None
    name = r.string(fields["name"], f"{where}: name") if "name" in fields else None
    if name is not None:
        if not NAME_PATTERN.fullmatch(name):
            message = "may use letters, digits, '_', '.', ':' and '-'"
            r.error(fields["name"], f"{where}: name", message)
        where = f"route {name!r}"
    kind = _which_kind(r, node, fields, where, vocabulary.kinds)
    if kind is None:
        return None
    default = None
    if "path" not in fields:
        if kind.default_path is None:
            r.error(node, where, "missing required key 'path'")
        else:
            default = kind.default_path(fields)
    path, segments, params = _read_path(r, fields, where, default)
    methods = _read_methods(r, fields, where, kind)
    timeout = settings.timeout
    if "timeout" in fields:
        timeout = r.duration(fields["timeout"], f"{where}: timeout") or timeout
    max_body = settings.max_body_size
    if "max_body_size" in fields:
        max_body = r.size(fields["max_body_size"], f"{where}: max_body_size") or max_body
    context = RouteContext(
        where=where, names=names, params=params, methods=methods, settings=settings
    )
    options = _read_options(r, fields, context, vocabulary)
    route_kind = kind.read(r, fields, context)
    summary = r.string(fields["summary"], f"{where}: summary") if "summary" in fields else None
    description = None
    if "description" in fields:
        description = r.string(fields["description"], f"{where}: description")
    tags = tuple(r.strings(fields["tags"], f"{where}: tags") or ()) if "tags" in fields else ()
    hooks = NO_HOOKS
    if "hooks" in fields:
        hooks = read_hooks(r, fields["hooks"], f"{where}: hooks", kind.hook_stages)
    if name is None or methods is None or route_kind is None:
        return None
    # path "" marks an invalid path: the route still counts for duplicate names.
    return Route(
        name=name,
        path=path or "",
        segments=segments,
        methods=methods,
        timeout=timeout,
        max_body_size=max_body,
        kind=route_kind,
        kind_name=kind.name,
        options=MappingProxyType(options),
        hooks=hooks,
        summary=summary,
        description=description,
        tags=tags,
        line=node.line,
    )


def _read_options(
    r: Reader, fields: dict[str, Node], context: RouteContext, vocabulary: Vocabulary
) -> dict[str, Any]:
    """Each policy's value on this route: its own keys, or (a policy that
    has one in settings) the default, unless the route says `null`."""
    options: dict[str, Any] = {}
    for option in vocabulary.options:
        value: Any = None
        if option.in_settings:
            key = option.keys[0].name
            if key not in fields:
                value = option.default(context.settings)
            elif fields[key].value is not None:
                value = option.read(r, fields, context)
        elif any(key in fields for key in option.names):
            value = option.read(r, fields, context)
        if value is not None:
            options[option.name] = value
    return options


def _which_kind(
    r: Reader, node: Node, fields: dict[str, Node], where: str, kinds: tuple[KindReader, ...]
) -> KindReader | None:
    """Exactly one kind key; keys of other kinds are errors."""
    present = [k for k in kinds if k.key in fields]
    if len(present) != 1:
        names = [repr(k.key) for k in kinds]
        r.error(node, where, f"needs exactly one of {', '.join(names[:-1])} or {names[-1]}")
        return None
    kind = present[0]
    for other in kinds:
        for key in other.only_keys:
            if key in fields and key not in kind.only_keys:
                message = f"applies to {other.name} ({other.key}) routes only"
                r.error(fields[key], f"{where}: {key}", message)
    return kind


def _read_path(
    r: Reader, fields: dict[str, Node], where: str, default: str | None = None
) -> tuple[str | None, tuple, frozenset[str] | None]:  # type: ignore[type-arg]
    if "path" not in fields:
        if default is None:
            return None, (), None
        segments, _ = parse_route_path(default)  # made by the kind: valid
        return default, segments, frozenset(s.param for s in segments if s.param)
    path = r.string(fields["path"], f"{where}: path")
    if path is None:
        return None, (), None
    segments, problem = parse_route_path(path)
    if problem:
        r.error(fields["path"], f"{where}: path", problem)
        return None, (), None
    first = segments[0].literal if segments else None
    if path in _RESERVED or first == "_gateway":
        r.error(fields["path"], f"{where}: path", f"{path!r} is reserved for the gateway itself")
        return None, (), None
    return path, segments, frozenset(s.param for s in segments if s.param)


def _read_methods(
    r: Reader, fields: dict[str, Node], where: str, kind: KindReader
) -> frozenset[str] | None:
    allowed = kind.methods
    if "methods" not in fields:
        return kind.default_methods
    names = r.strings(fields["methods"], f"{where}: methods")
    if names is None:
        return None
    methods = {m.upper() for m in names}
    if bad := sorted(methods - set(allowed)):
        r.error(fields["methods"], f"{where}: methods", f"unsupported method {bad[0]!r}")
        return None
    if not methods:
        r.error(fields["methods"], f"{where}: methods", "must not be empty")
        return None
    if "GET" in methods:
        methods.add("HEAD")
    return frozenset(methods)
