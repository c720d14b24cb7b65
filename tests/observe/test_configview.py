"""/config's masking: secrets by field, values from the environment, URLs."""

from __future__ import annotations

import pytest

from gateway.observe.configview import config_document, mask_text
from gateway.registry import parse_route_table


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("https://u:p@host:1/x?token=abc#top", "https://***@host:1/x?***#top"),
        ("https://host?token=abc", "https://host?***"),
        ("http://host/path", "http://host/path"),
        ("Bearer abcdef-secret", "Bearer ***"),
        ("/api/v1/users", "/api/v1/users"),  # a short value is not searched inside others
        ("1", "***"),  # ... but is masked where it is the whole value
        ("see http://a.b/c?d=e and ws://x@y/z", "see http://a.b/c?*** and ws://***@y/z"),
    ],
)
def test_mask_text(text: str, masked: str) -> None:
    assert mask_text(text, {"abcdef-secret", "1"}) == masked


def test_values_from_the_environment_are_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTREAM_URL", "http://users.internal:8080")
    monkeypatch.setenv("TOKEN", "tok-0123456789")
    table = parse_route_table(
        """
version: 1
upstreams:
  users: {url: "${UPSTREAM_URL}"}
  plain: {url: "http://plain:80"}
routes:
  - name: r
    path: /r
    backends:
      - {upstream: users, path: /u, key: u, query: {t: "${TOKEN}", d: "${MISSING:-shown}"}}
      - {upstream: plain, path: /p, key: p}
"""
    )
    assert table.secrets == {"http://users.internal:8080", "tok-0123456789"}
    document = config_document(table)
    text = repr(document)
    assert "tok-0123456789" not in text and "users.internal" not in text
    assert document["upstreams"]["users"]["host"] == "***"
    assert document["upstreams"]["plain"]["host"] == "plain"
    query = document["routes"][0]["kind"]["backends"][0]["query"]
    assert query == [["t", "***"], ["d", "shown"]]  # a default is the file's own text
