"""Credentials in the query string (SPEC 3.11): browsers cannot set headers on
WebSocket or EventSource requests, so a provider with `query_param` also takes
its credential from that parameter.

`take_credentials` removes the route's credential parameters from the query
string before anything else reads it (Django's request, the proxy, templates,
cache keys, uvicorn's own log lines all see the query without them);
`redact` shows any credential parameter as `***` where a query is logged.
Names are compared decoded, so `access%5Ftoken` is `access_token` too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import unquote_plus

__all__ = ["may_hold", "redact", "take_credentials"]

MASK = "***"


def may_hold(query: bytes, names: Iterable[str]) -> bool:
    """Cheap test before parsing: could `query` carry one of `names`?"""
    return b"%" in query or b"+" in query or any(n.encode() in query for n in names)


def take_credentials(query: bytes, params: Mapping[str, str]) -> tuple[bytes, dict[str, str]]:
    """`params`: parameter name -> the provider it belongs to. Returns the query
    without those parameters, and each provider's value (its first one)."""
    kept: list[bytes] = []
    found: dict[str, str] = {}
    for piece in query.split(b"&"):
        raw_name, _, raw_value = piece.partition(b"=")
        provider = params.get(_decoded(raw_name))
        if provider is None:
            kept.append(piece)
        elif provider not in found:
            found[provider] = _decoded(raw_value)
    return b"&".join(p for p in kept if p), found


def redact(query: str, names: frozenset[str]) -> str:
    """`query` with the value of every parameter in `names` shown as ***."""
    if not names or not may_hold(query.encode("latin-1", "replace"), names):
        return query
    pieces = query.split("&")
    for i, piece in enumerate(pieces):
        name = piece.partition("=")[0]
        if unquote_plus(name) in names:
            pieces[i] = f"{name}={MASK}"
    return "&".join(pieces)


def _decoded(raw: bytes) -> str:
    return unquote_plus(raw.decode("latin-1"), errors="replace")
