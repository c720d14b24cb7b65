"""Path matching (gateway/router.py)."""

from __future__ import annotations

import pytest

from gateway.router import BadPath, Match, NoMatch, Router, split_path
from tests.conftest import table

ROUTES = """
version: 1
upstreams: {u: {url: "http://u"}}
routes:
  - {name: new, path: /items/new, backends: [{upstream: u, path: /a}]}
  - {name: item, path: "/items/{id}", methods: [GET, DELETE], backends: [{upstream: u, path: /a}]}
  - {name: rest, path: "/items/{id}/{rest:path}", methods: [GET], proxy: {upstream: u, path: "/{rest}"}}
  - {name: any, path: "/items/{rest:path}", methods: [PUT], proxy: {upstream: u, path: "/{rest}"}}
  - {name: deep, path: "/a/{x}/c", backends: [{upstream: u, path: /a}]}
  - {name: deep-literal, path: "/a/b/d", backends: [{upstream: u, path: /a}]}
  - {name: root, path: /, backends: [{upstream: u, path: /a}]}
"""


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(table(ROUTES).routes)


def match(router: Router, method: str, path: str) -> Match | NoMatch:
    return router.match(method, split_path(path))


@pytest.mark.parametrize(
    ("method", "path", "route", "params"),
    [
        ("GET", "/items/new", "new", {}),
        ("HEAD", "/items/new", "new", {}),
        ("GET", "/items/42", "item", {"id": "42"}),
        (
            "DELETE",
            "/items/new",
            "item",
            {"id": "new"},
        ),  # literal first, then the next pattern that takes DELETE
        ("GET", "/items/42/x/y", "rest", {"id": "42", "rest": "x/y"}),
        ("GET", "/items/new/", "rest", {"id": "new", "rest": ""}),
        ("PUT", "/items/42", "any", {"rest": "42"}),
        ("PUT", "/items/", "any", {"rest": ""}),
        ("GET", "/a/b/c", "deep", {"x": "b"}),  # backtracks from the literal branch
        ("GET", "/a/b/d", "deep-literal", {}),
        ("GET", "/", "root", {}),
        ("GET", "/items/a%2Fb", "item", {"id": "a/b"}),  # %2F stays inside its segment
        ("GET", "/items/%E2%9C%93", "item", {"id": "✓"}),
    ],
)
def test_matches(
    router: Router, method: str, path: str, route: str, params: dict[str, str]
) -> None:
    found = match(router, method, path)
    assert isinstance(found, Match), found
    assert found.route.name == route
    assert found.params == params


def test_path_parameter_keeps_segments(router: Router) -> None:
    found = match(router, "GET", "/items/1/a%2Fb/c")
    assert isinstance(found, Match)
    assert found.path_params == {"rest": ("a/b", "c")}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/nothing", frozenset()),
        ("GET", "/items", frozenset()),
        ("GET", "/items//x", frozenset({"PUT"})),  # an empty segment is not an {id}
        ("POST", "/items/42", frozenset({"GET", "HEAD", "DELETE", "PUT"})),
        ("POST", "/", frozenset({"GET", "HEAD"})),
    ],
)
def test_no_match(router: Router, method: str, path: str, allowed: frozenset[str]) -> None:
    assert match(router, method, path) == NoMatch(allowed)


@pytest.mark.parametrize("path", ["items", "/%ff", "*"])
def test_bad_paths(path: str) -> None:
    with pytest.raises(BadPath):
        split_path(path)


def test_lookup_does_not_scan_routes() -> None:
    """1,000 routes: a lookup visits the segments of one path, not the routes."""
    many = "version: 1\nupstreams: {u: {url: 'http://u'}}\nroutes:\n" + "".join(
        f"  - {{name: r{i}, path: '/svc{i}/items/{{id}}', backends: [{{upstream: u, path: /a}}]}}\n"
        for i in range(1000)
    )
    router = Router(table(many).routes)
    calls = 0
    walk = router._walk

    def counting(*args):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return walk(*args)

    router._walk = counting  # type: ignore[method-assign]
    found = router.match("GET", split_path("/svc999/items/7"))
    assert isinstance(found, Match)
    assert found.route.name == "r999"
    assert calls <= 4
