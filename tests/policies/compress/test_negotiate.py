"""Accept-Encoding negotiation and type matching (gateway/policies/compress/negotiate.py)."""

from __future__ import annotations

import pytest

from gateway.policies.compress.negotiate import choose, type_matches

ALL = ("zstd", "br", "gzip")


@pytest.mark.parametrize(
    ("header", "chosen"),
    [
        ("gzip, br, zstd", "zstd"),
        ("gzip;q=1.0, zstd;q=0.99", "gzip"),
        ("GZIP", "gzip"),
        ("x-gzip", "gzip"),
        ("*;q=0.1, br;q=0.2", "br"),
        ("*", "zstd"),
        ("*, zstd;q=0", "br"),
        ("gzip;q=0", None),
        ("gzip;q=bogus", None),  # an unreadable weight refuses
        ("gzip;q=2", None),  # out of range
        ("deflate, identity", None),
        ("", None),
        (" , ;q=1, gzip", "gzip"),
        ("br;q=0.5, br;q=0.9", "br"),
    ],
)
def test_choose(header: str, chosen: str | None) -> None:
    assert choose(header, ALL) == chosen


def test_the_routes_order_breaks_ties() -> None:
    assert choose("zstd, gzip", ("gzip", "zstd")) == "gzip"
    assert choose("br", ("gzip",)) is None


@pytest.mark.parametrize(
    ("content_type", "matches"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("application/problem+json", True),
        ("application/x-ndjson", True),
        ("text/event-stream", True),
        ("text/html", True),
        ("image/png", False),
        ("application/octet-stream", False),
        ("application/jsonp", False),
        ("", False),
    ],
)
def test_type_matches(content_type: str, matches: bool) -> None:
    types = ("application/json", "application/*+json", "application/x-ndjson", "text/*")
    assert type_matches(content_type, types) is matches


def test_any_type() -> None:
    assert type_matches("image/png", ("*/*",))
