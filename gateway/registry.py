"""The one mutable holder: the Gateway currently serving (gateway/assembly.py),
and whether the process is draining.

Loading builds a new Gateway beside the old and swaps this single reference;
a request keeps the Gateway it started with (its envelope holds it) until it
ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.assembly import Gateway

__all__ = ["current", "install", "lifecycle"]


@dataclass(slots=True)
class Lifecycle:
    draining: bool = False  # set on shutdown: /readyz answers 503 from then on


lifecycle = Lifecycle()
_current: Gateway | None = None


def current() -> Gateway | None:
    return _current


def install(gateway: Gateway | None) -> None:
    global _current
    _current = gateway
