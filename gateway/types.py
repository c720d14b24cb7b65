"""The gateway's shared vocabulary, at the bottom of its layers: what every
layer may name without importing another (as Starlette's `types.py`).

- The ASGI aliases: `Scope`, `Message`, `Receive`, `Send`.
- `Handler[C, R]`: answers one call of type C with an R. `Stage[C, R]` wraps
  a handler into another (lura's proxy.Middleware): it may refuse before the
  inner handler runs, change the call, and change or watch the answer after.
  `compose(handler, *stages)` builds a chain once, outermost stage first; a
  stage that has nothing to do is None and is left out, so it costs nothing.
- `Failure`: why an upstream call failed, and the route status it maps to
  (SPEC 3.1), in the words of the contract (`contract_word`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from enum import Enum
from typing import Any

__all__ = [
    "Failure",
    "Handler",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "Stage",
    "compose",
    "contract_word",
]

type Scope = dict[str, Any]  # as Django's ASGI handler has it
type Message = Mapping[str, Any]
type Receive = Callable[[], Awaitable[Message]]
type Send = Callable[[Message], Awaitable[None]]

type Handler[C, R] = Callable[[C], Awaitable[R]]
type Stage[C, R] = Callable[[Handler[C, R]], Handler[C, R]]


def compose[C, R](handler: Handler[C, R], *stages: Stage[C, R] | None) -> Handler[C, R]:
    """`compose(h, a, b)` is `a(b(h))`: a runs first. None stages are left out."""
    for stage in reversed(stages):
        if stage is not None:
            handler = stage(handler)
    return handler


class Failure(Enum):
    """Why an upstream call failed, and the route status it maps to (SPEC 3.1)."""

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
