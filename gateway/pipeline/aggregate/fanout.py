"""Fork/join under a deadline: run a route's backends concurrently, start each
dependent backend as soon as the ones it reads have finished, stop everything
once the route has failed.

The route deadline is a real total deadline (`asyncio.timeout` around the whole
join); a backend still running when it passes ends as a timeout. A required
backend's failure cancels its siblings at once. A client disconnect cancels the
calling task, and with it every backend task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from gateway.pipeline.aggregate.outcome import Outcome
from gateway.types import Failure

__all__ = ["FanoutPlan", "fan_out"]


class FanoutPlan(Protocol):
    @property
    def index(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def required(self) -> bool: ...
    @property
    def deps(self) -> tuple[int, ...]: ...


type Call[P] = Callable[[P, Sequence[Outcome | None]], Awaitable[Outcome]]


async def fan_out[P: FanoutPlan](
    plans: Sequence[P],
    call: Call[P],
    deadline: float,
    on_done: Callable[[P, Outcome], None] | None = None,
) -> list[Outcome]:
    """Run `call(plan, outcomes_so_far)` for each plan; return one Outcome per
    plan. `on_done(plan, outcome)` hears of each backend as it finishes
    (not of those the deadline or the route's failure stopped)."""
    outcomes: list[Outcome | None] = [None] * len(plans)
    route_failed = False
    if len(plans) == 1:
        try:
            async with asyncio.timeout(deadline):
                outcomes[0] = await call(plans[0], outcomes)
        except TimeoutError:
            pass
        if on_done is not None and outcomes[0] is not None:
            on_done(plans[0], outcomes[0])
    else:
        tasks: list[asyncio.Task[None]] = []

        async def run(plan: P) -> None:
            nonlocal route_failed
            for dep in plan.deps:
                await tasks[dep]  # its outcome is in `outcomes` once it is done
            outcome = await call(plan, outcomes)
            outcomes[plan.index] = outcome
            if on_done is not None:
                on_done(plan, outcome)
            if not outcome.ok and plan.required and not route_failed:
                # The route has failed: stop the others. Cancelling rather than
                # raising keeps no exception (and so no traceback holding
                # every frame and body of the request) alive after the route.
                route_failed = True
                for task in tasks:
                    if task is not asyncio.current_task():
                        task.cancel()

        try:
            async with asyncio.timeout(deadline), asyncio.TaskGroup() as group:
                tasks.extend(group.create_task(run(plan)) for plan in plans)
        except TimeoutError:
            pass
        finally:
            tasks.clear()  # a task's traceback would hold this list, and so the task
    missing = Failure.CANCELLED if route_failed else Failure.TIMEOUT
    detail = "" if route_failed else "timed out (route deadline)"
    return [
        outcome or Outcome(plan.name, plan.required, failure=missing, detail=detail)
        for plan, outcome in zip(plans, outcomes, strict=True)
    ]
