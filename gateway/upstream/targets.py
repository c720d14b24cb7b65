"""The targets of one upstream (SPEC 3.17): which one a call goes to, and
which are out.

- `TargetState`: one target's circuit breaker, calls in flight, passive health
  (consecutive failures, ejections) and active health (its checks), kept across
  reloads while its URL, breaker and outlier settings are unchanged.
- `Balancer`: picks the target of each attempt. `least_request` draws two
  distinct targets by weight and takes the one with fewer calls in flight
  (power of two choices; a tie goes to the first drawn, so idle targets get
  their weights' shares); `round_robin` is nginx's smooth weighted round robin.
  A `Steer` (a sticky key, a target named by the override header) comes first:
  sticky keys go by weighted rendezvous hashing, so a weight change moves only
  the clients that must move. Retries avoid the targets already tried while
  another is available.
- Outlier ejection, as Envoy's consecutive-5xx detector: `consecutive_failures`
  in a row eject a target for `base_ejection` x its ejections (capped at
  `max_ejection`), never more than `max_ejected_percent` of the targets and
  never the last one. A target that is ejected or failing its checks takes no
  calls; when none is left to take them, all do (Envoy's panic mode).

Nothing above gateway/upstream knows how many targets an upstream has: the
pipeline's attempt is handed the target to call (its `origin`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import time
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from gateway.observe import metrics
from gateway.routes.model import Outlier, Target, Upstream
from gateway.upstream.requests import Origin

if TYPE_CHECKING:
    from gateway.upstream.attempts import CircuitBreaker

__all__ = ["Balancer", "Steer", "TargetState"]

logger = logging.getLogger("gateway.upstream")

# Bumped whenever any target goes out or comes back: balancers recompute the
# targets they draw from only then.
_generation = [0]


def _changed() -> None:
    _generation[0] += 1


@dataclass(frozen=True, slots=True)
class Steer:
    """What a request says about its target: a sticky key, a target it names."""

    key: bytes | None = None
    named: str | None = None


class TargetState:
    """One target's calls and health, kept across reloads."""

    __slots__ = (
        "breaker",
        "check_streak",
        "checks_ok",
        "current",
        "ejected_until",
        "ejections",
        "failures",
        "healthy_gauge",
        "in_flight",
        "name",
        "origin",
        "outcomes",
        "returned_at",
        "salt",
        "target",
        "upstream",
    )

    def __init__(self, upstream: Upstream, target: Target, breaker: CircuitBreaker | None) -> None:
        self.upstream = upstream.name
        self.target, self.name = target, target.name
        self.origin = Origin(upstream.scheme, target.host, target.port)
        self.breaker = breaker
        self.in_flight = 0
        self.failures = 0  # consecutive, for ejection
        self.ejections = 0
        self.ejected_until = 0.0  # monotonic; 0: not ejected
        self.returned_at = 0.0
        self.checks_ok = True  # the active checks' verdict (True without checks)
        self.check_streak = 0  # consecutive checks against the verdict
        self.current = 0  # smooth round robin's running weight
        self.salt = hashlib.blake2b(target.name.encode(), digest_size=16).digest()
        # [successes, failures]: gateway_upstream_target_requests_total
        self.outcomes = metrics.UPSTREAM_TARGET_REQUESTS.counts(upstream.name, target.name)
        self.healthy_gauge: Any = metrics.UPSTREAM_TARGET_HEALTHY.labels(upstream.name, self.name)
        self.healthy_gauge.set(1)

    @property
    def ejected(self) -> bool:
        return self.ejected_until > 0.0

    @property
    def available(self) -> bool:
        return self.ejected_until == 0.0 and self.checks_ok

    def _show(self) -> None:
        self.healthy_gauge.set(1 if self.available else 0)
        _changed()

    def eject(self, outlier: Outlier) -> float:
        """Out for base_ejection x ejections (at most max_ejection); the number
        of ejections decays by one per base_ejection spent back in."""
        now = time.monotonic()
        if self.ejections and self.returned_at:
            self.ejections = max(
                0, self.ejections - int((now - self.returned_at) // outlier.base_ejection)
            )
        self.ejections += 1
        seconds = min(outlier.base_ejection * self.ejections, outlier.max_ejection)
        self.ejected_until = now + seconds
        self.failures = 0
        self._show()
        asyncio.get_running_loop().call_later(seconds, self._come_back, self.ejected_until)
        return seconds

    def _come_back(self, until: float) -> None:
        if self.ejected_until == until:
            self.ejected_until = 0.0
            self.returned_at = time.monotonic()
            self._show()

    def checked(self, ok: bool, healthy: int, unhealthy: int) -> None:
        """One active check's result: `unhealthy` failures in a row take the
        target out, `healthy` successes in a row bring it back."""
        if ok == self.checks_ok:
            self.check_streak = 0
            return
        self.check_streak += 1
        if self.check_streak >= (healthy if ok else unhealthy):
            self.checks_ok, self.check_streak = ok, 0
            self._show()

    def describe(self) -> dict[str, object]:
        """For the dashboard and /config."""
        if self.ejected:
            state = "ejected"
        elif not self.checks_ok:
            state = "failing checks"
        elif self.breaker is not None and self.breaker.is_open:
            state = "circuit open"
        else:
            state = "healthy"
        left = max(0.0, self.ejected_until - time.monotonic()) if self.ejected else 0.0
        return {
            "name": self.name,
            "url": f"{self.origin.url('/')}".rstrip("/"),
            "weight": self.target.weight,
            "state": state,
            "in_flight": self.in_flight,
            "ejections": self.ejections,
            "ejected_for": round(left, 1),
        }


def _hash(key: bytes, salt: bytes) -> float:
    """A uniform draw in (0, 1) from the key and the target."""
    digest = hashlib.blake2b(key, digest_size=8, key=salt).digest()
    return (int.from_bytes(digest) + 0.5) / 18446744073709551616.0


class Balancer:
    """Picks each attempt's target among an upstream's (see the module's text)."""

    def __init__(self, upstream: Upstream, states: list[TargetState]) -> None:
        self.upstream = upstream.name
        self.states = states
        self.by_name = {s.name: s for s in states}
        self.only = states[0] if len(states) == 1 else None
        self.round_robin = upstream.balance == "round_robin"
        self.outlier = upstream.outlier
        self._generation = -1
        self._pool: list[TargetState] = states
        self._cumulative: list[int] = []
        self._total = 0
        for state in states:
            state._show()

    def _refresh(self) -> None:
        self._generation = _generation[0]
        pool = [s for s in self.states if s.available] or self.states  # none: all (panic)
        self._pool = pool
        self._cumulative = list(accumulate(s.target.weight for s in pool))
        self._total = self._cumulative[-1]

    def pick(
        self, steer: Steer | None = None, avoid: set[TargetState] | None = None
    ) -> TargetState:
        """The target for one attempt: not one in `avoid` while another can take it."""
        if self.only is not None:
            return self.only
        if self._generation != _generation[0]:
            self._refresh()
        pool = self._pool
        if avoid:
            pool = [s for s in pool if s not in avoid] or pool
        if steer is not None:
            if steer.named is not None:
                named = self.by_name.get(steer.named)
                if named is not None and named in pool:
                    return named
            if steer.key is not None:
                return self._sticky(pool, steer.key)
        if self.round_robin:
            return self._next(pool)
        return self._two_choices(pool, pool is self._pool)

    def _sticky(self, pool: list[TargetState], key: bytes) -> TargetState:
        """Weighted rendezvous hashing: the highest weight / -ln(u) wins."""
        best, best_score = pool[0], -1.0
        for state in pool:
            weight = state.target.weight
            if not weight:
                continue
            score = weight / -math.log(_hash(key, state.salt))
            if score > best_score:
                best, best_score = state, score
        return best

    def _next(self, pool: list[TargetState]) -> TargetState:
        best, total = pool[0], 0
        for state in pool:
            state.current += state.target.weight
            total += state.target.weight
            if state.current > best.current:
                best = state
        best.current -= total
        return best

    def _two_choices(self, pool: list[TargetState], cached: bool) -> TargetState:
        if len(pool) == 1:
            return pool[0]
        if cached:
            cumulative, total = self._cumulative, self._total
        else:
            cumulative = list(accumulate(s.target.weight for s in pool))
            total = cumulative[-1]
        if total == 0:  # only weight-0 targets left: evenly
            first, second = random.sample(pool, 2)
        else:
            i = bisect_right(cumulative, random.random() * total)  # noqa: S311
            first = pool[i]
            rest = total - first.target.weight
            if rest <= 0:
                return first
            r = random.random() * rest  # noqa: S311
            below = cumulative[i] - first.target.weight  # weight before `first`
            j = bisect_right(cumulative, r if r < below else r + first.target.weight)
            second = pool[min(j, len(pool) - 1)]
        # A tie goes to the first drawn, itself drawn by weight: idle, the
        # weights are the traffic shares.
        return second if second.in_flight < first.in_flight else first

    def record(self, state: TargetState, failed: bool) -> None:
        """An attempt's result: a failure is a connection error, a timeout or a
        502/503/504 answer."""
        if not failed:
            state.outcomes[0] += 1
            state.failures = 0
            return
        state.outcomes[1] += 1
        state.failures += 1
        if state.failures < self.outlier.consecutive_failures or state.ejected:
            return
        if self.only is not None:
            state.failures = 0  # never the last one
            return
        out = sum(1 for s in self.states if s.ejected)
        n = len(self.states)
        if out + 1 >= n or (out + 1) * 100 > self.outlier.max_ejected_percent * n:
            return
        seconds = state.eject(self.outlier)
        logger.warning(
            "upstream %s: target %s ejected for %.0f s after %d consecutive failures",
            self.upstream,
            state.name,
            seconds,
            self.outlier.consecutive_failures,
            extra={"upstream": self.upstream, "target": state.name},
        )
