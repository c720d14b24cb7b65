"""Dot paths into JSON bodies (`data.items`): walked by templates that read
another backend's body (`{user.account_id}`) and by shaping."""

from __future__ import annotations

from typing import Any

__all__ = ["MISSING", "get_field"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def get_field(value: Any, path: tuple[str, ...]) -> Any:
    """The value at a dot path through objects, or MISSING."""
    for name in path:
        if not isinstance(value, dict) or name not in value:
            return MISSING
        value = value[name]
    return value
