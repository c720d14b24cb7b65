"""What one backend call came to. Backend tasks return these instead of raising,
so that partial results survive under a TaskGroup."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from gateway.errors import BackendFailed

__all__ = ["Failure", "Outcome", "failure_error"]


class Failure(Enum):
    """Why a backend failed, and the route status it maps to (SPEC 3.1)."""

    TIMEOUT = ("timed out", 504)
    CONNECT = ("could not be reached", 502)
    STATUS = ("answered with an error status", 502)  # a 4xx keeps its own status
    REDIRECT = ("answered with a redirect", 502)
    INVALID = ("did not answer with valid JSON", 502)
    TOO_LARGE = ("answered with a body over max_response_size", 502)
    SHAPE = ("answered with a body of an unexpected shape", 502)
    CIRCUIT_OPEN = ("is unavailable (circuit open)", 503)
    MEMORY = ("was refused: the gateway's memory budget is spent, try again shortly", 503)
    DEPENDENCY = ("could not run: a backend it depends on failed", 502)
    # Stopped because the route had already failed: not a failure of its own.
    CANCELLED = ("was cancelled", 502)

    def __init__(self, phrase: str, route_status: int) -> None:
        self.phrase = phrase
        self.route_status = route_status


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


def failure_error(name: str, failure: Failure, *, status: int, detail: str = "") -> BackendFailed:
    """The problem a failed backend gives its route (named in `backend`)."""
    error = BackendFailed(
        status,
        f"backend {name!r} {detail or failure.phrase}",
        backend=name,
        slug="backend-" + failure.name.lower().replace("_", "-"),
    )
    if failure is Failure.MEMORY:
        error.headers["Retry-After"] = "1"
    return error
