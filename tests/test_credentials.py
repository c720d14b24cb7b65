"""Credentials in the query string: taken out before anything reads the query,
masked wherever a query is logged (gateway/credentials.py)."""

from __future__ import annotations

import pytest

from gateway.credentials import may_hold, redact, take_credentials

PARAMS = {"access_token": "keys", "token": "tokens"}


@pytest.mark.parametrize(
    ("query", "kept", "found"),
    [
        (b"a=1&access_token=k1&b=2", b"a=1&b=2", {"keys": "k1"}),
        (b"access_token=k1", b"", {"keys": "k1"}),
        (b"access%5Ftoken=k%2B1", b"", {"keys": "k+1"}),  # names compared decoded
        (b"access_token=first&access_token=second", b"", {"keys": "first"}),
        (b"token=t&access_token=k", b"", {"tokens": "t", "keys": "k"}),
        (b"access_token", b"", {"keys": ""}),
        (b"x=access_token&tokens=1", b"x=access_token&tokens=1", {}),
        (b"a=1&&b=2", b"a=1&b=2", {}),
        (b"", b"", {}),
    ],
)
def test_take_credentials(query: bytes, kept: bytes, found: dict[str, str]) -> None:
    assert take_credentials(query, PARAMS) == (kept, found)


def test_may_hold_is_a_cheap_superset() -> None:
    assert not may_hold(b"a=1&b=2", PARAMS)
    assert may_hold(b"a=1&token=2", PARAMS)
    assert may_hold(b"a%3D1", PARAMS)  # escaped: it might decode to a name
    assert may_hold(b"a+b=1", PARAMS)


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("a=1&access_token=secret&b=2", "a=1&access_token=***&b=2"),
        ("access%5Ftoken=secret", "access%5Ftoken=***"),
        ("access_token", "access_token=***"),
        ("a=access_token", "a=access_token"),
        ("", ""),
    ],
)
def test_redact(query: str, shown: str) -> None:
    assert redact(query, frozenset(PARAMS)) == shown
    assert redact(query, frozenset()) == query
