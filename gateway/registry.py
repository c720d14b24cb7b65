"""The one mutable holder: the Gateway currently serving (gateway/assembly.py),
and whether the process is draining.

Loading builds a new Gateway beside the old and swaps this single reference;
a request keeps the Gateway it started with (its envelope holds it) until it
ends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.assembly import Gateway

__all__ = ["current", "install", "lifecycle"]


@dataclass(slots=True)
class Lifecycle:
    draining: bool = False  # set on shutdown: /readyz answers 503 from then on
    # Connections with no natural end (event streams, WebSockets): each
    # registers how to end it; SIGTERM ends them all (`drain`).
    open_ended: set[Callable[[], None]] = field(default_factory=set)

    def drain(self) -> None:
        self.draining = True
        for end in list(self.open_ended):
            end()
        self.open_ended.clear()


lifecycle = Lifecycle()
_current: Gateway | None = None


def current() -> Gateway | None:
    return _current


def install(gateway: Gateway | None) -> None:
    global _current
    _current = gateway
