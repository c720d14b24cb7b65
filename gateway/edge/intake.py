"""What the edge does to a request before anything reads it, for every route
kind (HTTP requests and WebSocket handshakes alike):

- header names with `_` are dropped (ALLOW_UNDERSCORE_HEADERS=on keeps them).
  Django's META, CGI, PHP and Puma fold `_` and `-` together, so
  `X_Client_Id` would pass for the identity header the gateway sets
  (`X-Client-Id`) in an upstream that does; nginx drops them by default
  (`underscores_in_headers off`) for the same reason;
- a query string of more than DATA_UPLOAD_MAX_NUMBER_FIELDS fields is refused
  (400), counted as Django counts them (one more than its `&`s), whether the
  route parses the query (aggregate) or passes it on as it came (proxy,
  WebSocket).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from gateway.errors import BadRequest

__all__ = ["drop_underscore_headers", "too_many_query_fields"]


def drop_underscore_headers(scope: dict[str, Any]) -> None:
    """Remove every request header whose name holds `_`, in place."""
    headers = scope["headers"]
    for name, _ in headers:
        if b"_" in name:
            scope["headers"] = [(n, v) for n, v in headers if b"_" not in n]
            return


def too_many_query_fields(query: bytes) -> BadRequest | None:
    """The refusal of a query string with more fields than allowed, if it has."""
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    if limit is not None and query.count(b"&") >= limit:
        return BadRequest(f"the query string has more than {limit} parameters")
    return None
