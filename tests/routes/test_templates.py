"""Route path patterns and upstream templates (gateway/routes/templates.py)."""

from __future__ import annotations

import pytest

from gateway.routes.model import FieldRef, ParamRef, PathSegment, QueryRef
from gateway.routes.templates import parse_route_path, parse_template


def test_route_path_segments() -> None:
    segments, problem = parse_route_path("/users/{id}/files/{rest:path}")
    assert problem is None
    assert segments == (
        PathSegment(literal="users"),
        PathSegment(param="id"),
        PathSegment(literal="files"),
        PathSegment(param="rest", is_path=True),
    )
    assert parse_route_path("/") == ((), None)


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("users", "must start with '/'"),
        ("/a/{rest:path}/b", "must be the last segment"),
        ("/a/{x:int}", "unknown parameter type"),
        ("/a/{1x}", "invalid parameter name"),
        ("/a/{x}/{x}", "appears twice"),
        ("/a/file.{ext}", "a parameter must be a whole segment"),
        ("/a//b", "empty segment"),
        ("/a/../b", "is not allowed"),
        ("/a/b c", "percent-encoding"),
    ],
)
def test_bad_route_paths(path: str, fragment: str) -> None:
    segments, problem = parse_route_path(path)
    assert segments == ()
    assert problem is not None
    assert fragment in problem


def test_template_parts() -> None:
    template, problem = parse_template("/accounts/{user.account_id}/{id}?", is_path=False)
    assert problem is None
    assert template is not None
    assert template.parts == (
        "/accounts/",
        FieldRef("user", ("account_id",)),
        "/",
        ParamRef("id"),
        "?",
    )
    template, _ = parse_template("{query.page}", is_path=False)
    assert template is not None
    assert template.parts == (QueryRef("page"),)


def test_braces_escape() -> None:
    template, problem = parse_template('{{"a": "{id}"}}', is_path=False)
    assert problem is None
    assert template is not None
    assert template.parts == ('{"a": "', ParamRef("id"), '"}')


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("/a/{id", "unbalanced '{'"),
        ("/a/id}", "unbalanced '}'"),
        ("/a/{}", "invalid reference"),
        ("/a/{user.}", "invalid field path"),
        ("a/{id}", "must start with '/'"),
        ("/a/../{id}", "'.' and '..'"),
        ("/a/{id}/./b", "'.' and '..'"),
        ("/a?x=1", "use `query`"),
        ("/a b", "percent-encoding"),
    ],
)
def test_bad_upstream_paths(text: str, fragment: str) -> None:
    template, problem = parse_template(text, is_path=True)
    assert template is None
    assert problem is not None
    assert fragment in problem
