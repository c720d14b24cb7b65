"""MEMORY_BUDGET: what aggregate routes may hold of backend bodies at once.

Aggregate routes buffer each backend's body, parse it, shape it and serialise
the merged answer. The process-wide `MemoryBudget` counts all of that, as
what it costs in memory (the bytes read, then what the parsed objects cost,
estimated by `parsed_cost` before parsing), and refuses what would pass the
limit: that backend fails with 503 instead of the process growing. Each
request takes its share through a `Hold`, given back when the request no
longer needs it (the merged answer's bytes until the answer has been sent).

Under contention requests are admitted in the order they arrived, so that
some finish instead of all failing. Sixteen requests that each need a third
of the budget, started at once and each taking a little, would otherwise all
run out; and a request half done that fails has spent its share for nothing.
So:

- admission: each route learns what its answers need at their peak (the
  largest of its recent complete answers, decaying slowly). A new request
  reserves that much before its backends start, in arrival order; while it
  does not fit it waits, until its route's deadline is near (then `503` with
  `Retry-After`). A request admitted is one that can finish;
- within its reservation a request takes without waiting; past it, what fits
  is taken at once, and what does not fails the backend (`503`), unless the
  request is the oldest in flight: that one waits (so the first requests of a
  route that has not learned its size yet still finish in turn);
- a request that could not fit even alone is refused at once.
"""

from __future__ import annotations

import asyncio
import itertools
from bisect import insort

from gateway.observe import metrics

__all__ = ["Expectation", "Hold", "MemoryBudget", "parsed_cost"]

# A waiter gives up this long before its route's deadline, so that its route
# answers 503 (memory) rather than 504 (time).
_MARGIN = 0.05


def parsed_cost(data: bytes | bytearray) -> tuple[int, int]:
    """What `orjson.loads(data)` will cost, and how much of that its objects
    and lists are (what shaping builds anew), over-estimated from a few counts
    (about 1 ms per MiB). Calibrated with tracemalloc on object lists, deep
    nesting, wide objects, numbers, short and long strings: never below the
    real cost, and within 2x of it for the usual API payloads. Strings cost
    up to 4 bytes per character once decoded unless they are ASCII."""
    per_byte = 1 if data.isascii() else 4
    objects, lists = data.count(b"{"), data.count(b"[")
    containers = 200 * objects + 64 * lists
    total = 64 + len(data) * per_byte + containers + 32 * data.count(b",") + 12 * data.count(b'"')
    return total, containers


class Expectation:
    """What one route's requests need at their peak: the largest recent
    complete answer's peak, decaying by a tenth with each smaller one (quick
    to learn a larger size, slow to forget it)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def observe(self, peak: int) -> None:
        self.value = peak if peak >= self.value else (self.value * 9 + peak) // 10


class _Waiter:
    __slots__ = ("future", "hold", "size")

    def __init__(self, hold: Hold, size: int, future: asyncio.Future[bool]) -> None:
        self.hold, self.size, self.future = hold, size, future

    def __lt__(self, other: _Waiter) -> bool:
        return self.hold.order < other.hold.order


class MemoryBudget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0  # what the holds are charged: each the larger of its holding and reservation
        self._order = itertools.count()
        self._active: set[int] = set()  # the requests holding a share, by arrival
        self._waiters: list[_Waiter] = []  # by arrival of their requests, oldest first

    def hold(self, deadline: float | None = None) -> Hold:
        """A request's share; `deadline` (loop time) bounds its waits (without
        one it never waits: what does not fit is refused at once)."""
        hold = Hold(self, next(self._order), deadline)
        self._active.add(hold.order)
        return hold

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def _charge(self, hold: Hold, charged: int) -> bool:
        """Charge `hold` this much in all, if what it adds fits (and, for a
        request not yet admitted, if nobody is waiting ahead of it)."""
        more = charged - hold.charged
        if more > 0:
            if self.used + more > self.limit:
                return False
            self.used += more
        else:
            self.used += more
            if more and self._waiters:
                self._wake()
        hold.charged = charged
        return True

    async def _wait(self, hold: Hold, size: int) -> bool:
        """Wait in arrival order until `size` more fits; False when the
        request must do without (its deadline passed first)."""
        assert hold.deadline is not None
        waiter = _Waiter(hold, size, asyncio.get_running_loop().create_future())
        insort(self._waiters, waiter)
        try:
            async with asyncio.timeout_at(hold.deadline - _MARGIN):
                granted = await waiter.future
        except TimeoutError:
            granted = _granted(waiter.future)  # just as time ran out: keep it
        except asyncio.CancelledError:
            if _granted(waiter.future):
                self.used -= size  # granted just as the request was cancelled
                if self._waiters:
                    self._wake()
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
                self._wake()  # those behind it may fit now
        return granted

    def _wake(self) -> None:
        """Grant waiters in arrival order while the oldest fits."""
        while self._waiters and self.used + self._waiters[0].size <= self.limit:
            waiter = self._waiters.pop(0)
            if not waiter.future.done():  # (one that timed out is on its way out)
                self.used += waiter.size
                waiter.future.set_result(True)

    def _refused(self) -> bool:
        metrics.MEMORY_BUDGET_REJECTIONS.inc()
        return False

    def _done(self, hold: Hold) -> None:
        self._active.discard(hold.order)


class Hold:
    """One request's share of the budget."""

    __slots__ = ("_budget", "charged", "deadline", "held", "order", "peak", "reserved")

    def __init__(self, budget: MemoryBudget, order: int, deadline: float | None) -> None:
        self._budget = budget
        self.order = order  # when its request arrived, relative to the others
        self.deadline = deadline
        self.held = 0  # what it holds now
        self.peak = 0  # the most it has held
        self.reserved = 0  # what it was admitted with
        self.charged = 0  # what the budget counts for it: max(held, reserved)

    async def admit(self, expected: int) -> bool:
        """Reserve `expected` (its route's learned peak) before any backend
        starts, in arrival order; False when it does not fit in time."""
        if expected <= 0:
            return True
        budget = self._budget
        expected = min(expected, budget.limit)
        if not budget._waiters and budget._charge(self, expected):
            self.reserved = expected
            return True
        if self.deadline is None:
            return budget._refused()
        if not await budget._wait(self, expected):
            return budget._refused()
        self.reserved = self.charged = expected
        return True

    def take_now(self, size: int) -> bool:
        """Hold `size` more bytes if that needs no waiting (within the
        reservation, or it fits); False, and nothing taken, otherwise."""
        if size <= 0:
            return True
        wanted = self.held + size
        if self._budget._charge(self, max(wanted, self.reserved)):
            self._held(wanted)
            return True
        return False

    async def take(self, size: int) -> bool:
        """Hold `size` more bytes: within the reservation at once; past it
        what fits, waiting only for the oldest request in flight. False (and
        nothing taken) when the request must do without."""
        if self.take_now(size):
            return True
        budget = self._budget
        wanted = self.held + size
        more = wanted - self.charged
        if (
            self.deadline is None
            or wanted > budget.limit  # it could never fit
            or self.order != min(budget._active)  # only the oldest in flight waits
            or not await budget._wait(self, more)
        ):
            return budget._refused()
        self.charged += more
        self._held(self.held + size)  # (the request's other backends may have taken meanwhile)
        return True

    def _held(self, held: int) -> None:
        self.held = held
        if held > self.peak:
            self.peak = held

    def give(self, size: int) -> None:
        size = min(size, self.held)
        if size > 0:
            self.held -= size
            self._budget._charge(self, max(self.held, self.reserved))

    def keep(self, size: int) -> None:
        """Give back all but `size` bytes (what outlives the work: the answer),
        and the reservation: the work it was for is done."""
        self.reserved = 0
        self.give(self.held - size)
        self._budget._charge(self, self.held)

    def release(self) -> None:
        """The request is over: everything goes back."""
        self.reserved = 0
        self.held = 0
        self._budget._charge(self, 0)
        self._budget._done(self)


def _granted(future: asyncio.Future[bool]) -> bool:
    return future.done() and not future.cancelled() and future.result()
