"""The whole routes file: top-level keys and cross-route rules."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from types import MappingProxyType
from typing import Any

from gateway.routes.hooks import hooks_section, read_hooks
from gateway.routes.keys import Key, ListOf, MapOf, OneOf, Section, Value
from gateway.routes.model import NO_HOOKS, Route, RouteTable, Upstream
from gateway.routes.reader import Reader
from gateway.routes.route import read_route, route_sections
from gateway.routes.settings import read_settings, settings_section
from gateway.routes.source import Node
from gateway.routes.upstreams import UPSTREAM, read_upstream
from gateway.routes.vocabulary import Vocabulary

__all__ = ["document_section", "read_document"]


def document_section(vocabulary: Vocabulary) -> Section:
    """The whole file: the core sections and the policies' own."""
    return Section(
        (
            Key(name="version", value=Value({"const": 1}, 1, 2), required=True),
            Key(name="settings", value=settings_section(vocabulary)),
            Key(name="upstreams", value=MapOf(UPSTREAM, "u")),
            *(Key(name=s.key, value=s.value) for s in vocabulary.top_sections),
            Key(name="hooks", value=hooks_section()),
            Key(name="routes", value=ListOf(OneOf(route_sections(vocabulary))), required=True),
        )
    )


def read_document(r: Reader, root: Node, source: str, vocabulary: Vocabulary) -> RouteTable | None:
    fields = document_section(vocabulary).fields(r, root, "")
    if fields is None:
        return None
    if "version" in fields and fields["version"].value != 1:
        r.error(
            fields["version"],
            "version",
            f"unsupported version {fields['version'].value!r} (expected 1)",
        )
    # Names as written (valid or not), so that a broken upstream is reported
    # once, not again at every route that uses it.
    names: dict[str, Collection[str]] = {"upstreams": _names(fields.get("upstreams"))}
    for section in vocabulary.top_sections:
        names[section.key] = _names(fields.get(section.key))
    settings = read_settings(r, fields.get("settings"), vocabulary, names)
    hooks = read_hooks(r, fields["hooks"], "hooks") if "hooks" in fields else NO_HOOKS
    upstreams: dict[str, Upstream] = _read_named(
        r, fields.get("upstreams"), "upstreams", read_upstream
    )
    sections: dict[str, Mapping[str, Any]] = {
        section.key: section.read(r, fields[section.key])
        for section in vocabulary.top_sections
        if section.key in fields
    }
    routes: list[Route] = []
    route_nodes = r.listing(fields["routes"], "routes") if "routes" in fields else None
    for i, node in enumerate(route_nodes or []):
        route = read_route(r, i, node, settings, names, vocabulary)
        if route is not None:
            routes.append(route)
    _check_route_conflicts(r, routes)
    return RouteTable(
        source=source,
        settings=settings,
        upstreams=MappingProxyType(upstreams),
        routes=tuple(routes),
        hooks=hooks,
        sections=MappingProxyType(sections),
    )


def _names(node: Node | None) -> frozenset[str]:
    return (
        frozenset(node.value) if node is not None and isinstance(node.value, dict) else frozenset()
    )


def _read_named[T](
    r: Reader, node: Node | None, where: str, read: Callable[[Reader, str, Node], T | None]
) -> dict[str, T]:
    if node is None or node.value is None:
        return {}
    if not isinstance(node.value, dict):
        r.error(node, where, f"expected a mapping of names, got {node.kind}")
        return {}
    out: dict[str, T] = {}
    for name, child in node.value.items():
        value = read(r, name, child)
        if value is not None:
            out[name] = value
    return out


def _check_route_conflicts(r: Reader, routes: list[Route]) -> None:
    names: dict[str, Route] = {}
    shapes: dict[tuple[object, ...], list[Route]] = {}
    for route in routes:
        if (first := names.get(route.name)) is not None:
            r.error(
                route.line,
                f"route {route.name!r}",
                f"duplicate name (first used at line {first.line})",
            )
        names.setdefault(route.name, route)
        if not route.path:
            continue
        shape = tuple(
            s.literal if s.literal is not None else (":path" if s.is_path else ":")
            for s in route.segments
        )
        for other in shapes.get(shape, ()):
            if shared := sorted(
                route.methods & other.methods - {"HEAD"} or route.methods & other.methods
            ):
                r.error(
                    route.line,
                    f"route {route.name!r}",
                    f"{route.path} {', '.join(shared)} is already served by route "
                    f"{other.name!r} (line {other.line})",
                )
                break
        shapes.setdefault(shape, []).append(route)
