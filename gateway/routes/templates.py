"""Route path patterns and upstream templates, parsed once at load time.

A route path is `/`-separated segments, each a literal, `{name}` (one segment)
or, last only, `{name:path}` (the rest of the path). An upstream template is
text with `{ref}` holes where ref is a route parameter `name`, a client query
parameter `query.NAME`, or a field of another backend's body `KEY.a.b`.
Parsing returns the value or an error message; it never raises.
"""

from __future__ import annotations

import re

from gateway.routes.model import FieldRef, ParamRef, PathSegment, QueryRef, Template, TemplatePart

__all__ = ["parse_route_path", "parse_template"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_QUERY_NAME = re.compile(r"[A-Za-z0-9_.\-~\[\]]+")
_FIELD = re.compile(r"[A-Za-z0-9_\-]+")
# RFC 3986 pchar minus "%": what a literal route segment may hold.
_LITERAL_SEGMENT = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@]*")
# Static text of an upstream path: pchar and "/", percent-escapes allowed.
STATIC_PATH = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*")


def parse_route_path(path: str) -> tuple[tuple[PathSegment, ...], str | None]:
    """`/users/{id}/orders` -> segments; or ((), error message)."""
    if not path.startswith("/"):
        return (), "must start with '/'"
    raw = path[1:].split("/") if path != "/" else []
    segments: list[PathSegment] = []
    seen: set[str] = set()
    for index, text in enumerate(raw):
        last = index == len(raw) - 1
        if text.startswith("{") and text.endswith("}"):
            name, _, kind = text[1:-1].partition(":")
            if not _IDENT.fullmatch(name):
                return (), f"invalid parameter name {name!r} in {text!r}"
            if kind not in ("", "path"):
                return (), f"unknown parameter type {kind!r} in {text!r} (only ':path')"
            if kind == "path" and not last:
                return (), f"{text!r} must be the last segment"
            if name in seen:
                return (), f"parameter {name!r} appears twice"
            seen.add(name)
            segments.append(PathSegment(param=name, is_path=kind == "path"))
            continue
        if "{" in text or "}" in text:
            return (), f"segment {text!r}: a parameter must be a whole segment, like '{{id}}'"
        if not text and not last:
            return (), "empty segment ('//')"
        if text in (".", ".."):
            return (), f"segment {text!r} is not allowed"
        if not _LITERAL_SEGMENT.fullmatch(text):
            return (), f"segment {text!r} has characters that need percent-encoding"
        segments.append(PathSegment(literal=text))
    return tuple(segments), None


def parse_template(text: str, *, is_path: bool) -> tuple[Template | None, str | None]:
    """Split `/accounts/{user.account_id}` into literal text and references.
    `{{` and `}}` stand for literal braces."""
    parts: list[TemplatePart] = []
    static: list[str] = []
    skeleton: list[str] = []  # the text with every hole as "x", for the dot-segment check
    i = 0
    while i < len(text):
        char = text[i]
        if char in "{}" and text.startswith(char * 2, i):
            static.append(char)
            skeleton.append(char)
            i += 2
            continue
        if char == "}":
            return None, "unbalanced '}' (write '}}' for a literal brace)"
        if char != "{":
            static.append(char)
            skeleton.append(char)
            i += 1
            continue
        end = text.find("}", i)
        if end < 0 or "{" in text[i + 1 : end]:
            return None, "unbalanced '{' (write '{{' for a literal brace)"
        ref, problem = _parse_ref(text[i + 1 : end])
        if ref is None:
            return None, problem
        if static:
            parts.append("".join(static))
            static = []
        parts.append(ref)
        skeleton.append("x")
        i = end + 1
    if static:
        parts.append("".join(static))
    if is_path:
        if not text.startswith("/"):
            return None, "must start with '/'"
        for part in parts:
            if isinstance(part, str) and not STATIC_PATH.fullmatch(part):
                return (
                    None,
                    f"{part!r} has characters that need percent-encoding (or a '?': use `query`)",
                )
        if any(seg in (".", "..") for seg in "".join(skeleton).split("/")):
            return None, "'.' and '..' segments are not allowed"
    return Template(parts=tuple(parts), source=text), None


def _parse_ref(ref: str) -> tuple[ParamRef | QueryRef | FieldRef | None, str | None]:
    ref = ref.strip()
    head, dot, rest = ref.partition(".")
    if not _IDENT.fullmatch(head):
        return None, f"invalid reference {{{ref}}}"
    if not dot:
        return ParamRef(head), None
    if head == "query":
        if not _QUERY_NAME.fullmatch(rest):
            return None, f"invalid query parameter name in {{{ref}}}"
        return QueryRef(rest), None
    fields = tuple(rest.split("."))
    if not all(_FIELD.fullmatch(f) for f in fields):
        return None, f"invalid field path in {{{ref}}}"
    return FieldRef(head, fields), None
