"""Why an upstream call failed, and what that means for the route (SPEC 3.1),
for every route kind. Foreign errors (httpx's) are translated here."""

from __future__ import annotations

from enum import Enum

import httpx

from gateway.errors import BackendFailed

__all__ = ["Failure", "classify_transport_error", "contract_word", "failure_error"]


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


# Why a backend failed, in the words of the contract (progressive records,
# gateway.hooks.BackendOutcome.error).
_WORDS = {
    Failure.TIMEOUT: "timeout",
    Failure.CIRCUIT_OPEN: "circuit_open",
    Failure.STATUS: "status",
    Failure.REDIRECT: "status",
    Failure.INVALID: "invalid",
    Failure.SHAPE: "invalid",
    Failure.TOO_LARGE: "too_large",
    Failure.MEMORY: "too_large",
    Failure.CONNECT: "connection",
}


def contract_word(failure: Failure) -> str:
    """timeout, circuit_open, status, invalid, too_large or connection."""
    return _WORDS.get(failure, "connection")


def classify_transport_error(exc: httpx.TransportError) -> Failure:
    """httpx (or the transport under it) failed: a timeout or a connection error."""
    if isinstance(exc, httpx.TimeoutException):
        return Failure.TIMEOUT
    if isinstance(exc, httpx.DecodingError):
        return Failure.INVALID
    return Failure.CONNECT


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
