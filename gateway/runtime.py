"""Shared runtime resources, made once per process and kept across reloads:
upstream HTTP clients, breakers and retry budgets, the Redis client, the
rate-limit and cache stores (gateway/stores), the memory budget, and what
policies keep across reloads (`keep`: JWKS key caches). Owned by the ASGI
lifespan, which closes them at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any, cast

import httpx

from gateway.observe import metrics
from gateway.routes.model import Target, Upstream
from gateway.stores.cache import CacheStore, Coalescer, MemoryCache
from gateway.stores.limiter import Limiter
from gateway.stores.limiter_memory import MemoryLimiter
from gateway.stores.memory_budget import MemoryBudget
from gateway.upstream.attempts import UpstreamGuard, new_target_state
from gateway.upstream.clients import UpstreamClients, create_client
from gateway.upstream.health import HealthChecks
from gateway.upstream.streams import ClientStreams
from gateway.upstream.targets import TargetState

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["Runtime"]

logger = logging.getLogger("gateway")
# Streamed downloads may outlive a reload by minutes; their client stays open.
RETIRED_CLIENTS_GRACE = 300.0


def _target_key(upstream: Upstream, target: Target) -> tuple[object, ...]:
    return (
        upstream.name,
        upstream.scheme,
        target.host,
        target.port,
        target.name,
        upstream.circuit_breaker,
        bool(upstream.targets),  # the breaker's metric label
    )


async def _close_all(clients: list[httpx.AsyncClient]) -> None:
    for client in clients:
        await client.aclose()


class Runtime:
    """What outlives a routes table: upstream clients, circuit breakers and retry
    budgets, the Redis client, the rate-limit and cache stores, the memory budget,
    what policies keep (JWKS caches). Owned by the ASGI lifespan, which closes
    it at shutdown."""

    def __init__(
        self, *, redis_url: str, failure_mode: str, memory_budget: int = 512 * 1024 * 1024
    ) -> None:
        self.clients = UpstreamClients()
        self.memory = MemoryBudget(memory_budget)
        metrics.MEMORY_BUDGET_USED.set_function(lambda: self.memory.used)
        metrics.MEMORY_BUDGET_WAITING.set_function(lambda: self.memory.waiting)
        self.redis: Redis | None = None
        self.limiter: Limiter
        store: CacheStore
        if redis_url:
            # redis-py (and with it whatever it imports) only when it is used.
            from gateway.stores.cache_redis import RedisCache
            from gateway.stores.limiter_redis import RedisLimiter
            from gateway.stores.redis import connect_redis

            self.redis = connect_redis(redis_url)
            self.limiter, store = RedisLimiter(self.redis), RedisCache(self.redis)
        else:
            self.limiter = memory = MemoryLimiter()
            metrics.RATELIMIT_BUCKETS.set_function(memory.__len__)
            store = MemoryCache()
        self.coalescer = Coalescer(store)
        self.client_streams = ClientStreams()  # long-lived connections per client
        self.fail_closed = failure_mode == "closed"
        self._kept: dict[Hashable, Any] = {}
        self._own_client: httpx.AsyncClient | None = None
        self._guards: dict[Upstream, UpstreamGuard] = {}
        self._targets: dict[tuple[object, ...], TargetState] = {}
        self.health = HealthChecks()  # active checks, started with the serving loop
        self._retired: list[httpx.AsyncClient] = []  # closed RETIRED_CLIENTS_GRACE after a reload
        self._closing: set[asyncio.Future[None]] = set()

    def guards_for(
        self,
        upstreams: Mapping[str, Upstream],
        clients: Mapping[str, httpx.AsyncClient] | None = None,
    ) -> dict[str, UpstreamGuard]:
        """Targets (breakers, health), retry budgets and stream slots by
        upstream name. A guard is kept across reloads while its upstream's
        definition is unchanged; a target's state while its URL, name and
        breaker are (so a weight change keeps every target's health)."""
        guards: dict[str, UpstreamGuard] = {}
        states: dict[tuple[object, ...], TargetState] = {}
        for name, upstream in upstreams.items():
            guard = self._guards.get(upstream)
            if guard is None:
                made = []
                for target in upstream.instances:
                    key = _target_key(upstream, target)
                    state = self._targets.get(key)
                    if state is None:
                        state = new_target_state(upstream, target)
                    state.target = target  # its weight may have changed
                    states[key] = state
                    made.append(state)
                guard = self._guards[upstream] = UpstreamGuard.for_upstream(upstream, made)
            else:
                for target, state in zip(upstream.instances, guard.balancer.states, strict=True):
                    states[_target_key(upstream, target)] = state
            guards[name] = guard
        self._guards = {u: g for u, g in self._guards.items() if g in guards.values()}
        shown = {(s.upstream, s.name) for s in states.values()}
        for gone in self._targets.values():  # no stale healthy series for a removed target
            if (gone.upstream, gone.name) not in shown:
                metrics.UPSTREAM_TARGET_REQUESTS.forget(gone.upstream, gone.name)
                with contextlib.suppress(KeyError):
                    metrics.UPSTREAM_TARGET_HEALTHY.remove(gone.upstream, gone.name)
        self._targets = states
        if clients is not None:
            self.health.want(
                {
                    u: (clients[n], guards[n].balancer.states)
                    for n, u in upstreams.items()
                    if u.health_check is not None
                }
            )
        return guards

    def guard(self, upstream: Upstream) -> UpstreamGuard | None:
        """The targets and retry budget an upstream's calls go through now."""
        return self._guards.get(upstream)

    def keep[T](self, key: Hashable, make: Callable[[], T]) -> T:
        """The object kept under `key`, made by `make` the first time: kept
        across reloads (a JWT provider's JWKS keys, by URL)."""
        if key not in self._kept:
            self._kept[key] = make()
        return cast(T, self._kept[key])

    def own_client(self) -> httpx.AsyncClient:
        """A small client for the gateway's own calls (JWKS fetches), not
        an upstream's."""
        if self._own_client is None:
            self._own_client = create_client(max_connections=4)
        return self._own_client

    def retire_unused_clients(self, upstreams: Mapping[str, Upstream]) -> None:
        """After a reload: close the clients of upstreams that changed or went
        away, once requests that may still use them have had time to finish."""
        retired = self.clients.retire(upstreams)
        if retired:
            self._retired.extend(retired)
            asyncio.get_running_loop().call_later(
                RETIRED_CLIENTS_GRACE, self._close_retired, retired
            )

    def _close_retired(self, clients: list[httpx.AsyncClient]) -> None:
        closing = [c for c in clients if c in self._retired]
        self._retired = [c for c in self._retired if c not in closing]
        task = asyncio.ensure_future(_close_all(closing))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def redis_ready(self) -> bool:
        if self.redis is None:
            return True
        from gateway.stores.redis import REDIS_ERRORS, REDIS_TIMEOUT  # loaded with the client

        try:
            async with asyncio.timeout(REDIS_TIMEOUT):
                return bool(await self.redis.ping())
        except REDIS_ERRORS:
            return False

    async def aclose(self) -> None:
        from gateway.upstream.h2client import H2Client

        await self.health.stop()
        for kept in list(self._kept.values()):
            if isinstance(kept, H2Client):  # grpc routes' HTTP/2 connections
                await kept.aclose()
        retired, self._retired = self._retired, []
        await _close_all(retired)
        await self.clients.aclose()
        await self.limiter.aclose()
        if self._own_client is not None:
            await self._own_client.aclose()
        if self.redis is not None:
            await self.redis.aclose()
