"""Path matching: a segment trie built once per routes table.

Lookup walks the request's segments, so its cost grows with the path's depth,
never with the number of routes. At each position a literal segment beats
`{x}`, and `{x:path}` matches last. Among the routes whose pattern matches,
the first (in that order) that accepts the method wins; when none does, the
answer is 405 with every method that would have been accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from gateway.routes.model import Route

__all__ = ["BadPath", "Match", "NoMatch", "Router", "split_path"]


@dataclass(frozen=True, slots=True)
class Match:
    route: Route
    params: dict[str, str]  # decoded values; a {x:path} value is its segments joined by "/"
    path_params: dict[str, tuple[str, ...]]  # {x:path} values as decoded segments


@dataclass(frozen=True, slots=True)
class NoMatch:
    allowed: frozenset[str]  # empty: 404; otherwise 405 with these methods


class BadPath(ValueError):
    """The request path cannot be decoded (invalid percent-encoding or UTF-8)."""


@dataclass(slots=True, eq=False)
class _Node:
    literals: dict[str, _Node] = field(default_factory=dict)
    param: _Node | None = None
    endpoints: dict[str, Route] = field(default_factory=dict)  # the path ends here
    tail: dict[str, Route] = field(default_factory=dict)  # a {x:path} starts here


def split_path(raw_path: str) -> list[str]:
    """`/a/b%2Fc` -> ["a", "b/c"]: split on "/" first, then decode each segment."""
    if not raw_path.startswith("/"):
        raise BadPath("the path must start with '/'")
    if raw_path == "/":
        return []
    segments = raw_path[1:].split("/")
    for i, segment in enumerate(segments):
        if "%" in segment:
            try:
                segments[i] = unquote_to_bytes(segment).decode("utf-8")
            except UnicodeDecodeError:
                raise BadPath("the path is not valid UTF-8") from None
    return segments


class Router:
    def __init__(self, routes: tuple[Route, ...]) -> None:
        self._root = _Node()
        for route in routes:
            self._add(route)

    def _add(self, route: Route) -> None:
        node = self._root
        for segment in route.segments:
            if segment.is_path:
                for method in route.methods:
                    node.tail.setdefault(method, route)
                return
            if segment.literal is not None:
                node = node.literals.setdefault(segment.literal, _Node())
            else:
                if node.param is None:
                    node.param = _Node()
                node = node.param
        for method in route.methods:
            node.endpoints.setdefault(method, route)

    def match(self, method: str, segments: list[str]) -> Match | NoMatch:
        allowed: set[str] = set()
        found = self._walk(self._root, segments, 0, method, allowed)
        if found is None:
            return NoMatch(frozenset(allowed))
        return _bind(found, segments)

    def _walk(
        self, node: _Node, segments: list[str], i: int, method: str, allowed: set[str]
    ) -> Route | None:
        if i == len(segments):
            if route := node.endpoints.get(method):
                return route
            allowed.update(node.endpoints)
        else:
            child = node.literals.get(segments[i])
            if child is not None and (route := self._walk(child, segments, i + 1, method, allowed)):
                return route
            if (
                node.param is not None
                and segments[i]
                and (route := self._walk(node.param, segments, i + 1, method, allowed))
            ):
                return route
        if node.tail and i < len(segments):  # "/files/{p:path}" needs the "/" after files
            if route := node.tail.get(method):
                return route
            allowed.update(node.tail)
        return None


def _bind(route: Route, segments: list[str]) -> Match:
    params: dict[str, str] = {}
    path_params: dict[str, tuple[str, ...]] = {}
    for i, segment in enumerate(route.segments):
        if segment.param is None:
            continue
        if segment.is_path:
            rest = tuple(segments[i:])
            path_params[segment.param] = rest
            params[segment.param] = "/".join(rest)
        else:
            params[segment.param] = segments[i]
    return Match(route, params, path_params)
