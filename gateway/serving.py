"""The one mutable holder: the Gateway currently serving (gateway/assembly.py).

Loading builds a new Gateway beside the old and swaps this single reference;
a request keeps the Gateway it started with until it ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.assembly import Gateway

__all__ = ["current", "install"]

_current: Gateway | None = None


def current() -> Gateway | None:
    return _current


def install(gateway: Gateway | None) -> None:
    global _current
    _current = gateway
