"""The whole routes file: top-level keys and cross-route rules."""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

from gateway.routes.hooks import read_hooks
from gateway.routes.model import NO_HOOKS, ProviderConfig, Route, RouteTable, Upstream
from gateway.routes.providers import read_auth_provider
from gateway.routes.reader import Reader
from gateway.routes.route import read_route
from gateway.routes.settings import read_settings
from gateway.routes.source import Node
from gateway.routes.upstreams import read_upstream

__all__ = ["read_document"]


def read_document(r: Reader, root: Node, source: str) -> RouteTable | None:
    fields = r.mapping(
        root,
        "",
        allowed=("version", "settings", "upstreams", "auth", "hooks", "routes"),
        required=("version", "routes"),
    )
    if fields is None:
        return None
    if "version" in fields and fields["version"].value != 1:
        r.error(
            fields["version"],
            "version",
            f"unsupported version {fields['version'].value!r} (expected 1)",
        )
    settings = read_settings(r, fields.get("settings"))
    hooks = read_hooks(r, fields["hooks"], "hooks") if "hooks" in fields else NO_HOOKS
    upstreams: dict[str, Upstream] = _read_named(
        r, fields.get("upstreams"), "upstreams", read_upstream
    )
    providers: dict[str, ProviderConfig] = _read_named(
        r, fields.get("auth"), "auth", read_auth_provider
    )
    # Names as written (valid or not), so that a broken upstream is reported
    # once, not again at every route that uses it.
    upstream_names = _names(fields.get("upstreams"))
    provider_names = _names(fields.get("auth"))
    routes: list[Route] = []
    route_nodes = r.listing(fields["routes"], "routes") if "routes" in fields else None
    for i, node in enumerate(route_nodes or []):
        route = read_route(r, i, node, settings, upstream_names, provider_names)
        if route is not None:
            routes.append(route)
    _check_route_conflicts(r, routes)
    return RouteTable(
        source=source,
        settings=settings,
        upstreams=MappingProxyType(upstreams),
        auth=MappingProxyType(providers),
        routes=tuple(routes),
        hooks=hooks,
    )


def _names(node: Node | None) -> set[str]:
    return set(node.value) if node is not None and isinstance(node.value, dict) else set()


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
