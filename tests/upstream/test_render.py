"""Rendering upstream paths and queries safely (gateway/upstream/render.py)."""

from __future__ import annotations

import pytest

from gateway.errors import BadRequest
from gateway.routes.templates import parse_template
from gateway.upstream.render import (
    HOP_BY_HOP,
    MissingField,
    RenderInput,
    encode_segment,
    hop_by_hop_names,
    render_path,
    render_query,
)


def path(
    text: str,
    params: dict[str, str] | None = None,
    path_params: dict[str, tuple[str, ...]] | None = None,
    query: dict[str, str] | None = None,
    bodies: dict[str, object] | None = None,
) -> str:
    template, problem = parse_template(text, is_path=True)
    assert template is not None, problem
    return render_path(template, RenderInput(params or {}, path_params or {}, query or {}, bodies))


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("42", "42"),
        ("a/b", "a%2Fb"),
        ("a b", "a%20b"),
        ("a?b#c", "a%3Fb%23c"),
        ("100%", "100%25"),
        ("a\\b", "a%5Cb"),
        ("...", "..."),
        ("a.b", "a.b"),
        ("✓", "%E2%9C%93"),
        ("http://evil.com", "http%3A%2F%2Fevil.com"),
        ("", ""),
    ],
)
def test_segments_are_encoded(value: str, encoded: str) -> None:
    assert encode_segment(value, "x") == encoded


@pytest.mark.parametrize(
    "value",
    [
        ".",
        "..",
        "%2e%2e",
        "%2E%2e",
        ".%2e",
        "%252e%252e",
        "../x",
        "a/../b",
        "..\\x",
        "x/..",
        "%25252e%25252e",
    ],
)
def test_dot_segments_in_any_encoding_are_refused(value: str) -> None:
    with pytest.raises(BadRequest):
        encode_segment(value, "x")


def test_render_path_with_params() -> None:
    assert path("/users/{id}/orders", {"id": "a/b"}) == "/users/a%2Fb/orders"


def test_path_parameter_keeps_slashes_but_not_dots() -> None:
    assert (
        path("/v2/{rest}", {"rest": "a/b c"}, path_params={"rest": ("a", "b c")}, query={})
        == "/v2/a/b%20c"
    )
    assert (
        path("/v2/{rest}", {"rest": "a%2Fb"}, path_params={"rest": ("a/b",)}, query={})
        == "/v2/a%2Fb"
    )
    with pytest.raises(BadRequest):
        path("/v2/{rest}", {"rest": "a/../b"}, path_params={"rest": ("a", "..", "b")}, query={})


def test_field_references_read_other_bodies() -> None:
    rendered = path(
        "/accounts/{user.account.id}",
        {},
        path_params={},
        query={},
        bodies={"user": {"account": {"id": 7}}},
    )
    assert rendered == "/accounts/7"
    cases: tuple[dict[str, object], ...] = (
        {"user": {}},
        {"user": {"account": {"id": None}}},
        {"user": {"account": {"id": [1]}}},
    )
    for bodies in cases:
        with pytest.raises(MissingField):
            path("/accounts/{user.account.id}", {}, path_params={}, query={}, bodies=bodies)
    with pytest.raises(MissingField):  # an upstream's value is not a client error
        path(
            "/accounts/{user.account.id}",
            {},
            path_params={},
            query={},
            bodies={"user": {"account": {"id": ".."}}},
        )


def test_render_query() -> None:
    templates = []
    for name, text in (
        ("q", "{query.q}"),
        ("page", "{query.page}"),
        ("id", "user-{id}"),
        ("raw", "a&b=c"),
    ):
        template, _ = parse_template(text, is_path=False)
        assert template is not None
        templates.append((name, template))
    values = RenderInput({"id": "7"}, {}, {"q": "a/b c"})
    assert render_query(templates, values) == "q=a%2Fb%20c&id=user-7&raw=a%26b%3Dc"


def test_hop_by_hop_names() -> None:
    assert hop_by_hop_names([(b"accept", b"*/*")]) == HOP_BY_HOP
    names = hop_by_hop_names([(b"connection", b"close, X-Secret ,x-other")])
    assert {b"x-secret", b"x-other", b"close"} <= names
    assert names >= HOP_BY_HOP
