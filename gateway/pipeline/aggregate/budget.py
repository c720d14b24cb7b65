"""MEMORY_BUDGET: what aggregate routes may hold of backend bodies at once.

Aggregate routes buffer each backend's body, parse it, shape it and serialise
the merged answer. The process-wide `MemoryBudget` counts all of that, as
what it costs in memory (the bytes read, then what the parsed objects cost,
estimated by `parsed_cost` before parsing), and refuses what would pass the
limit: that backend fails with 503 instead of the process growing. Each
request takes its share through a `Hold`, given back when the request no
longer needs it (the merged answer's bytes until the answer has been sent).

Under contention requests are admitted in the order they arrived, so that
some finish instead of all failing (sixteen requests that each need a third
of the budget, all taking a little at once, would otherwise all run out):

- a request takes what fits, leaving what older waiting requests need;
- one that does not fit waits, in arrival order, until memory is given back
  or its route's deadline is near (then its backend fails with 503), unless
  it already holds memory while an older request waits: it gives way (fails
  at once), since it would keep the older one waiting for what it holds;
- a request that starts to wait makes every younger waiter that holds memory
  give way too. So the oldest waiter always gets memory once the requests
  ahead of it finish, and no two requests wait for each other.
"""

from __future__ import annotations

import asyncio
import itertools
from bisect import insort

from gateway.observe import metrics

__all__ = ["Hold", "MemoryBudget", "parsed_cost"]

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


class _Waiter:
    __slots__ = ("future", "hold", "size")

    def __init__(self, hold: Hold, size: int, future: asyncio.Future[bool]) -> None:
        self.hold, self.size, self.future = hold, size, future

    def __lt__(self, other: _Waiter) -> bool:
        return self.hold.order < other.hold.order


class MemoryBudget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._order = itertools.count()
        self._waiters: list[_Waiter] = []  # by arrival of their requests, oldest first

    def hold(self, deadline: float | None = None) -> Hold:
        """A request's share; `deadline` (loop time) bounds its waits (without
        one it never waits: what does not fit is refused at once)."""
        return Hold(self, next(self._order), deadline)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def _take(self, hold: Hold, size: int) -> bool:
        """Take `size` now if it fits beside what older waiters need."""
        needed = self.used + size
        if self._waiters:
            needed += sum(w.size for w in self._waiters if w.hold.order < hold.order)
        if needed > self.limit:
            return False
        self.used += size
        return True

    async def _wait(self, hold: Hold, size: int) -> bool:
        """Wait in arrival order for `size`; False when the request gives way."""
        older_waiting = any(w.hold.order < hold.order for w in self._waiters)
        if hold.deadline is None or size > self.limit or (hold.held and older_waiting):
            return self._refused()
        for younger in [w for w in self._waiters if w.hold.order > hold.order and w.hold.held]:
            self._waiters.remove(younger)  # it holds memory: it gives way
            if not younger.future.done():
                younger.future.set_result(False)
        loop = asyncio.get_running_loop()
        waiter = _Waiter(hold, size, loop.create_future())
        insort(self._waiters, waiter)
        try:
            async with asyncio.timeout_at(hold.deadline - _MARGIN):
                granted = await waiter.future
        except TimeoutError:
            granted = _granted(waiter.future)  # just as time ran out: keep it
        except asyncio.CancelledError:
            if _granted(waiter.future):
                self._give(size)  # granted just as the request was cancelled
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
                self._wake()  # those behind it may fit now
        return granted or self._refused()

    def _refused(self) -> bool:
        metrics.MEMORY_BUDGET_REJECTIONS.inc()
        return False

    def _give(self, size: int) -> None:
        self.used -= size
        if self._waiters:
            self._wake()

    def _wake(self) -> None:
        """Grant waiters in arrival order while the oldest fits."""
        while self._waiters and self.used + self._waiters[0].size <= self.limit:
            waiter = self._waiters.pop(0)
            if not waiter.future.done():  # (one that timed out is on its way out)
                self.used += waiter.size
                waiter.future.set_result(True)


def _granted(future: asyncio.Future[bool]) -> bool:
    return future.done() and not future.cancelled() and future.result()


class Hold:
    """One request's share of the budget."""

    __slots__ = ("_budget", "deadline", "held", "order")

    def __init__(self, budget: MemoryBudget, order: int, deadline: float | None) -> None:
        self._budget = budget
        self.order = order  # when its request arrived, relative to the others
        self.deadline = deadline
        self.held = 0

    async def take(self, size: int) -> bool:
        """Reserve `size` more bytes, waiting in turn when they do not fit;
        False (and nothing reserved) when the request must do without."""
        if size <= 0:
            return True
        budget = self._budget
        if not budget._take(self, size) and not await budget._wait(self, size):
            return False
        self.held += size
        return True

    def give(self, size: int) -> None:
        size = min(size, self.held)
        if size > 0:
            self.held -= size
            self._budget._give(size)

    def keep(self, size: int) -> None:
        """Give back all but `size` bytes (what outlives the work: the answer)."""
        self.give(self.held - size)

    def release(self) -> None:
        self.give(self.held)
