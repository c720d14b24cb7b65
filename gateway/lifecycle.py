"""Whether the process is draining, and how to end what has no natural end.

Connections with no natural end (event streams, WebSockets) each register
how to end them; SIGTERM (the lifespan's shutdown) drains: /readyz answers
503 from then on, and every registered connection is ended.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Lifecycle", "lifecycle"]


@dataclass(slots=True)
class Lifecycle:
    draining: bool = False  # set on shutdown: /readyz answers 503 from then on
    open_ended: set[Callable[[], None]] = field(default_factory=set)

    def drain(self) -> None:
        self.draining = True
        for end in list(self.open_ended):
            end()
        self.open_ended.clear()


lifecycle = Lifecycle()
