"""What one backend call came to. Backend tasks return these instead of raising,
so that partial results survive under a TaskGroup."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.types import Failure

__all__ = ["Outcome"]


@dataclass(slots=True)
class Outcome:
    name: str
    required: bool
    body: Any = None  # the shaped body, when ok
    raw: Any = None  # the parsed body before shaping: what dependents read
    failure: Failure | None = None
    detail: str = ""
    status: int | None = None  # the upstream's HTTP status, when one came back
    duration: float = 0.0  # all attempts, back-off included
    attempts: int = 0
    size: int = 0  # of the body as read, in bytes
    held: int = 0  # of the memory budget, for the body in `raw`
    containers: int = 0  # ... of which its objects and lists (what shaping copies)

    @property
    def outcome_label(self) -> str:
        """For metrics and logs: "ok", or the failure's name."""
        return "ok" if self.failure is None else self.failure.name.lower()

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def route_status(self) -> int:
        """The status this failure gives the whole route."""
        if self.failure is Failure.STATUS and self.status is not None and 400 <= self.status < 500:
            return self.status
        return self.failure.route_status if self.failure else 200
