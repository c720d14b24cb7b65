"""Token buckets (SPEC 3.5): capacity `burst`, refilled at `limit` per `window`,
one token per admitted request.

A `Limiter` takes one decision per request. `MemoryLimiter` keeps the buckets
in this process (exact, since a decision never awaits); `RedisLimiter` keeps
them in Redis, shared by every replica, one round trip per decision.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from gateway.routes.model import Route

if TYPE_CHECKING:
    from gateway.envelope import Envelope

__all__ = [
    "Decision",
    "Limiter",
    "RouteLimit",
    "StoreUnavailable",
    "build_route_limit",
    "decision_for",
]


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    remaining: int  # whole tokens left
    reset_after: int  # seconds until the bucket is full again, rounded up
    retry_after: int  # seconds until one token, rounded up, at least 1


class StoreUnavailable(Exception):
    """The shared store did not answer; RATE_LIMIT_FAILURE_MODE decides."""


class Limiter(Protocol):
    async def acquire(self, key: str, capacity: int, rate: float) -> Decision:
        """Take one token from bucket `key`; `rate` is tokens per second."""
        ...

    def housekeep(self) -> None:
        """Called about once a second, off the request path: forget what can be."""
        ...

    async def aclose(self) -> None: ...


def decision_for(allowed: bool, tokens: float, capacity: int, rate: float) -> Decision:
    """The headers' numbers for a bucket holding `tokens` after this decision."""
    return Decision(
        allowed=allowed,
        remaining=max(0, math.floor(tokens + 1e-9)),
        reset_after=max(0, math.ceil((capacity - tokens) / rate - 1e-9)),
        retry_after=max(1, math.ceil((1 - tokens) / rate - 1e-9)),
    )


@dataclass(frozen=True, slots=True)
class RouteLimit:
    route: str
    limit: int
    capacity: int
    rate: float  # tokens per second
    key: str  # "client", "ip", "global" or "header:<name>"
    header: bytes | None  # the lower-case header name of "header:<name>"

    def bucket(self, envelope: Envelope, headers: list[tuple[bytes, bytes]]) -> str:
        """The bucket this request draws from (SPEC 3.5 `key`)."""
        if self.key == "global":
            who = "global"
        elif self.key == "client" and (identity := envelope.identity_key) is not None:
            who = "id:" + identity
        elif self.header is not None and (value := _first(headers, self.header)):
            who = "h:" + hashlib.sha256(value).hexdigest()[:32]
        else:
            who = "ip:" + envelope.client
        return f"{self.route}:{who}"


def build_route_limit(route: Route) -> RouteLimit | None:
    spec = route.rate_limit
    if spec is None:
        return None
    header = spec.key.partition(":")[2] if spec.key.startswith("header:") else None
    return RouteLimit(
        route=route.name,
        limit=spec.limit,
        capacity=spec.burst,
        rate=spec.limit / spec.window,
        key=spec.key,
        header=header.encode() if header else None,
    )


def _first(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    return next((value for n, value in headers if n == name), None)
