"""Active health checks (`health_check:`, SPEC 3.17): every `interval`, a GET
of `path` (from the target's root, whatever the upstream's base path: where
health endpoints live) to each target, through the
upstream's own client (its pool, its `tls:`). A 2xx answer within `timeout`
passes; `unhealthy` failures in a row take the target out of the balancer,
`healthy` passes in a row bring it back (TargetState.checked).

One task per upstream with checks, started with the serving loop and again
after each reload for upstreams whose checks changed; a target's verdict
outlives reloads with its state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import httpx

from gateway.routes.model import HealthCheck, Upstream
from gateway.upstream.requests import build_request, send
from gateway.upstream.targets import TargetState

__all__ = ["HealthChecks", "probe"]

logger = logging.getLogger("gateway.upstream")
_HEADERS = [(b"user-agent", b"api-gateway-health-check"), (b"accept", b"*/*")]


async def probe(
    client: httpx.AsyncClient, state: TargetState, path: str, seconds: float
) -> tuple[bool, str]:
    """One check of one target: (passed, what happened)."""
    request = build_request("GET", state.origin.url(path), state.origin.host_header, _HEADERS)
    try:
        async with asyncio.timeout(seconds):
            response = await send(client, request)
            await response.aclose()
    except TimeoutError:
        return False, f"no answer within {seconds:g} s"
    except httpx.TransportError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    ok = 200 <= response.status_code < 300
    return ok, f"answered {response.status_code}"


async def _check_forever(
    upstream: Upstream, check: HealthCheck, client: httpx.AsyncClient, states: list[TargetState]
) -> None:
    path = check.path  # from the target's root: /healthz, not under the API's base path
    await asyncio.sleep(random.random() * min(check.interval, 1.0))  # noqa: S311 (spread)
    while True:
        results = await asyncio.gather(
            *(probe(client, s, path, check.timeout) for s in states), return_exceptions=True
        )
        for state, result in zip(states, results, strict=True):
            if isinstance(result, BaseException):  # never the end of the checks
                logger.error("health check of %s/%s failed: %r", upstream.name, state.name, result)
                continue
            ok, what = result
            was = state.checks_ok
            state.checked(ok, check.healthy, check.unhealthy)
            if state.checks_ok != was:
                logger.warning(
                    "upstream %s: target %s %s its health checks (%s)",
                    upstream.name,
                    state.name,
                    "passes" if ok else "fails",
                    what,
                    extra={"upstream": upstream.name, "target": state.name},
                )
        await asyncio.sleep(check.interval)


class HealthChecks:
    """The running checks, by upstream definition."""

    def __init__(self) -> None:
        self._wanted: dict[Upstream, tuple[httpx.AsyncClient, list[TargetState]]] = {}
        self._tasks: dict[Upstream, asyncio.Task[None]] = {}
        self._running = False

    def want(self, wanted: dict[Upstream, tuple[httpx.AsyncClient, list[TargetState]]]) -> None:
        """The upstreams that should be checked now (after a load or reload)."""
        self._wanted = {u: w for u, w in wanted.items() if u.health_check is not None}
        if self._running:
            self._sync()

    def start(self) -> None:
        """With the serving loop (the ASGI lifespan's startup)."""
        self._running = True
        self._sync()

    def _sync(self) -> None:
        for upstream in [u for u in self._tasks if u not in self._wanted]:
            self._tasks.pop(upstream).cancel()
        for upstream, (client, states) in self._wanted.items():
            if upstream not in self._tasks:
                assert upstream.health_check is not None
                self._tasks[upstream] = asyncio.create_task(
                    _check_forever(upstream, upstream.health_check, client, states)
                )

    async def stop(self) -> None:
        self._running = False
        tasks, self._tasks = list(self._tasks.values()), {}
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
