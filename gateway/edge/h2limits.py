"""What one HTTP/2 connection may ask of the gateway beyond its requests.

HTTP/2 lets a client make the server work without sending a request: reset
the streams it opens (rapid reset, CVE-2023-44487), ask for PING and SETTINGS
acknowledgements, send frames of types nobody reads, open streams past the
advertised limit. Each is legal now and then; in a loop it is an attack that
costs the server and nothing to the client. Each kind gets a budget per
connection: a burst, refilled at a steady rate. A connection that spends a
budget is cut off with GOAWAY (ENHANCE_YOUR_CALM), as nginx, Envoy and Go's
x/net/http2 do, so it costs other clients nothing.

CONTINUATION floods are h2's to stop (at most 64 frames per header block,
then a connection error), and an oversized header list is refused by the
HPACK decoder (gateway/edge/h2server.py sets its limit).

An attacker cut off reconnects and starts again with fresh budgets, so its
address goes in the `PENALTY` box: for PENALTY_SECONDS its new HTTP/2
connections get a GOAWAY before anything else is made for them
(gateway/edge/autoprotocol.py), twice as long each time it is cut off again
within a minute, up to MAX_PENALTY_SECONDS. Clients behind the same address
(a NAT, a layer-4 load balancer that hides client addresses) share the
penalty, which is why it starts short; HTTP/1.1 connections and HTTP/2
connections already open are not touched, and a peer in TRUSTED_PROXIES (an
ingress relaying many clients' streams) is never penalised.
"""

from __future__ import annotations

import time

__all__ = [
    "BUDGETS",
    "MAX_PENALTY_SECONDS",
    "PENALTY",
    "PENALTY_SECONDS",
    "Budget",
    "FrameBudgets",
    "PenaltyBox",
]

PENALTY_SECONDS = 2.0
MAX_PENALTY_SECONDS = 60.0
_STRIKES_FORGOTTEN = 60.0  # seconds after a penalty ends

# kind: (burst, refill per second). A browser or gRPC client cancels a few
# streams when a page changes or a call is abandoned; a rapid-reset attack
# resets thousands a second.
BUDGETS: dict[str, tuple[float, float]] = {
    "reset": (50.0, 25.0),  # streams the client reset before their answer ended
    "refused": (50.0, 25.0),  # streams opened past MAX_CONCURRENT_STREAMS
    "ping": (50.0, 10.0),
    "settings": (50.0, 10.0),
    "other": (200.0, 100.0),  # PRIORITY, unknown frame types, empty DATA
}


class Budget:
    """A token bucket: `spend()` is False once the burst is gone and the
    refill has not kept up."""

    __slots__ = ("_last", "_rate", "_size", "_tokens")

    def __init__(self, size: float, rate: float) -> None:
        self._size = size
        self._rate = rate
        self._tokens = size
        self._last = time.monotonic()

    def spend(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._size, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class FrameBudgets:
    """The budgets of one connection, made on first use."""

    __slots__ = ("_budgets",)

    def __init__(self) -> None:
        self._budgets: dict[str, Budget] = {}

    def spend(self, kind: str) -> bool:
        budget = self._budgets.get(kind)
        if budget is None:
            budget = self._budgets[kind] = Budget(*BUDGETS[kind])
        return budget.spend()


class PenaltyBox:
    """Addresses whose HTTP/2 connections are refused until a time, with how
    many times in a row they were cut off; at most `size` of them (the
    oldest go first)."""

    def __init__(self, size: int = 10_000) -> None:
        self._until: dict[str, tuple[float, int]] = {}
        self._size = size

    def add(self, address: str) -> float:
        """Cut off (again): the penalty's length in seconds."""
        now = time.monotonic()
        until, strikes = self._until.pop(address, (0.0, 0))
        strikes = strikes + 1 if now - until < _STRIKES_FORGOTTEN else 1
        seconds = min(PENALTY_SECONDS * float(2 ** (strikes - 1)), MAX_PENALTY_SECONDS)
        if len(self._until) >= self._size:
            del self._until[next(iter(self._until))]
        self._until[address] = (now + seconds, strikes)
        return seconds

    def holds(self, address: str) -> bool:
        until = self._until.get(address)
        return until is not None and until[0] > time.monotonic()


PENALTY = PenaltyBox()
