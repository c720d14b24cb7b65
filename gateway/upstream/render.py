"""Render what goes to an upstream from what came from the client: the path,
the query string and the headers (SPEC 3.3).

Client input can never change the upstream's scheme, host or port, nor climb
above the templated prefix: every value is percent-encoded as one segment
(`/` becomes `%2F`), a `{x:path}` value keeps its `/` but each of its segments is
encoded the same way, and any value that decodes (however many times) to a `.`
or `..` segment is refused with 400 before a URL exists. Static template text
was checked at load time. The resulting URL has no dot segments, so httpx's
normalisation has nothing to climb with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote

from gateway.dotpath import MISSING, get_field
from gateway.errors import BadRequest
from gateway.routes.model import FieldRef, ParamRef, QueryRef, Template, Upstream

__all__ = [
    "HOP_BY_HOP",
    "OWNED_REQUEST",
    "MissingField",
    "RenderInput",
    "encode_segment",
    "hop_by_hop_names",
    "render_path",
    "render_query",
    "upstream_headers",
]

# RFC 9110 7.6.1 and the usual proxy extras: one hop only, never passed on.
# Set by the gateway on the way in to relayed requests (proxy, websocket): a
# client's own copies never pass.
OWNED_REQUEST = frozenset(
    {
        b"host",
        b"content-length",
        b"expect",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-request-id",
        b"traceparent",  # each call gets its own (observe/trace.py)
        b"tracestate",
    }
)
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)


class MissingField(Exception):
    """A `{KEY.field}` reference found no usable value in that backend's body."""


class RenderInput:
    """The values templates read, gathered once per request."""

    __slots__ = ("bodies", "params", "path_params", "query")

    def __init__(
        self,
        params: Mapping[str, str],
        path_params: Mapping[str, tuple[str, ...]],
        query: Mapping[str, str],
        bodies: Mapping[str, Any] | None = None,
    ) -> None:
        self.params = params
        self.path_params = path_params
        self.query = query
        self.bodies = bodies or {}


def _climbs(value: str) -> bool:
    """True when `value`, decoded up to 4 times, has a "." or ".." segment
    (with "/" or "\\" as separators)."""
    for _ in range(4):
        if "." in value:
            for part in value.replace("\\", "/").split("/"):
                if part in (".", ".."):
                    return True
        if "%" not in value:
            return False
        decoded = unquote(value)
        if decoded == value:
            return False
        value = decoded
    return True  # still encoded after four rounds: refuse rather than guess


def encode_segment(value: str, what: str) -> str:
    """One path segment: refuse dot segments, then encode everything but
    unreserved characters (so "/", "\\", "?", "#", "%" all become escapes)."""
    if _climbs(value):
        raise BadRequest(f"{what}: '.' and '..' are not allowed in path values")
    return quote(value, safe="")


def _field_text(ref: FieldRef, bodies: Mapping[str, Any]) -> str:
    value = get_field(bodies.get(ref.key, MISSING), ref.path)
    where = f"{ref.key}.{'.'.join(ref.path)}"
    if value is MISSING or value is None:
        raise MissingField(f"field {where!r} is missing")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise MissingField(f"field {where!r} is not a string or number")


def render_path(template: Template, values: RenderInput) -> str:
    """The upstream path (percent-encoded), without the upstream's base path."""
    out: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, ParamRef):
            segments = values.path_params.get(part.name)
            if segments is not None:
                what = f"parameter {part.name!r}"
                out.append("/".join(encode_segment(s, what) for s in segments))
            else:
                out.append(encode_segment(values.params[part.name], f"parameter {part.name!r}"))
        elif isinstance(part, QueryRef):
            text = values.query.get(part.name, "")
            out.append(encode_segment(text, f"query parameter {part.name!r}"))
        else:
            try:
                text = _field_text(part, values.bodies)
                out.append(encode_segment(text, "field"))
            except BadRequest as exc:
                # The value came from an upstream, not the client.
                raise MissingField(
                    f"field {part.key}.{'.'.join(part.path)}: {exc.detail}"
                ) from None
    return "".join(out)


def render_query(query: Iterable[tuple[str, Template]], values: RenderInput) -> str:
    """`name=value&...` for a backend's `query:`. A value that is only
    `{query.NAME}` is left out when the client did not send NAME."""
    pairs: list[tuple[str, str]] = []
    for name, template in query:
        parts = template.parts
        if len(parts) == 1 and isinstance(parts[0], QueryRef) and parts[0].name not in values.query:
            continue
        text = []
        for part in parts:
            if isinstance(part, str):
                text.append(part)
            elif isinstance(part, ParamRef):
                text.append(values.params[part.name])
            elif isinstance(part, QueryRef):
                text.append(values.query.get(part.name, ""))
            else:
                text.append(_field_text(part, values.bodies))
        pairs.append((name, "".join(text)))
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)


def hop_by_hop_names(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """HOP_BY_HOP plus whatever a Connection header names."""
    extra: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            extra.update(token.strip().lower() for token in value.split(b",") if token.strip())
    return HOP_BY_HOP | extra if extra else HOP_BY_HOP


def upstream_headers(upstream: Upstream) -> tuple[tuple[bytes, bytes], ...]:
    """The upstream's own `headers`, encoded once at load time."""
    return tuple((name.encode(), value.encode("latin-1")) for name, value in upstream.headers)
