"""Shadow comparison (`mirror.compare`, SPEC 3.17): the primary's and the
mirror's status and JSON body, compared with `ignore:` dot paths left out.

A dot path names object keys (`meta.generated_at`); a key that holds a list
applies to each of its items (`items.updated_at` skips that field in every
item), and a number picks one item (`items.0.id`). A body that is not JSON is
compared byte for byte. The differences are (path, primary's value, mirror's
value), at most MAX_DIFFERENCES of them, in document order.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["MAX_DIFFERENCES", "Difference", "compare", "without"]

MAX_DIFFERENCES = 20
_ABSENT = object()  # a key one side has and the other does not

type Difference = tuple[str, Any, Any]


def _parse(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return _ABSENT


def without(value: Any, path: tuple[str, ...]) -> Any:
    """`value` with what `path` names removed (a copy where it changed)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        if head not in value:
            return value
        out = dict(value)
        if rest:
            out[head] = without(value[head], rest)
        else:
            del out[head]
        return out
    if isinstance(value, list):
        if head.isdigit():
            index = int(head)
            if index >= len(value):
                return value
            out_list = list(value)
            if rest:
                out_list[index] = without(value[index], rest)
            else:
                del out_list[index]
            return out_list
        return [without(item, path) for item in value]
    return value


def _walk(a: Any, b: Any, at: str, out: list[Difference]) -> None:
    if len(out) >= MAX_DIFFERENCES:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in (*a, *(k for k in b if k not in a)):
            _walk(a.get(key, _ABSENT), b.get(key, _ABSENT), f"{at}.{key}" if at else key, out)
        return
    if isinstance(a, list) and isinstance(b, list):
        for index in range(max(len(a), len(b))):
            left = a[index] if index < len(a) else _ABSENT
            right = b[index] if index < len(b) else _ABSENT
            _walk(left, right, f"{at}.{index}" if at else str(index), out)
        return
    if a != b or type(a) is not type(b):
        out.append((at or "(body)", a, b))


def compare(
    primary: tuple[int | None, bytes | None],
    mirror: tuple[int, bytes | None],
    ignore: tuple[tuple[str, ...], ...] = (),
) -> list[Difference]:
    """The differences between two answers: [] when they match. A body that
    was too large to keep (None on either side) is compared by status only."""
    (status_a, body_a), (status_b, body_b) = primary, mirror
    out: list[Difference] = []
    if status_a != status_b:
        out.append(("(status)", status_a, status_b))
    if body_a is None or body_b is None:
        return out
    a, b = _parse(body_a), _parse(body_b)
    if a is _ABSENT or b is _ABSENT:
        if body_a != body_b:
            out.append(("(body)", _text(body_a), _text(body_b)))
        return out
    for path in ignore:
        a, b = without(a, path), without(b, path)
    _walk(a, b, "", out)
    return out


def _text(body: bytes, limit: int = 200) -> str:
    text = body[:limit].decode("utf-8", "replace")
    return text + ("..." if len(body) > limit else "")


def shown(value: Any) -> Any:
    """A value as the mismatch list shows it (absent: None, with a note)."""
    return "(absent)" if value is _ABSENT else value
