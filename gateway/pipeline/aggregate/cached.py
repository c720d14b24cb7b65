"""An aggregate route with `cache` (SPEC 3.6, 3.10): GET (and HEAD) answers come
from the store when they can; identical misses in flight share one fan-out.

Two requests share an entry only when every backend request they would cause
is the same (gateway/stores/cache.py says what the key holds)."""

from __future__ import annotations

from django.http.response import HttpResponseBase

from gateway.envelope import RouteCall
from gateway.pipeline.aggregate.handler import AggregateHandler
from gateway.responses import Answer, json_response
from gateway.stores.cache import Coalescer, cache_key

__all__ = ["CachedAggregate"]


class CachedAggregate:
    def __init__(
        self,
        inner: AggregateHandler,
        ttl: float,
        coalescer: Coalescer,
        varying: frozenset[bytes],
    ) -> None:
        self.inner = inner
        self.ttl = ttl
        self.coalescer = coalescer
        self.varying = varying  # client headers that reach a backend, so vary its answer

    async def __call__(self, call: RouteCall) -> HttpResponseBase:
        request = call.http
        if request.method not in ("GET", "HEAD") or self.inner.stream_type(request):
            return await self.inner(call)  # streams are never cached
        filled = await self.coalescer.get_or_compute(
            self._key(call), self.ttl, lambda: self._fill(call)
        )
        response = json_response(filled.answer)
        response.headers["X-Cache"] = "HIT" if filled.hit else "MISS"
        return response

    def _key(self, call: RouteCall) -> str:
        envelope, request, match = call.envelope, call.http, call.match
        params = sorted(
            (name, list(match.path_params.get(name, (value,))))
            for name, value in match.params.items()
        )
        varying = [
            (n.decode("latin-1"), v.decode("latin-1"))
            for n, v in call.scope["headers"]
            if n in self.varying
        ]
        gateway_set = [(n.decode(), v.decode("latin-1")) for n, v in envelope.identity_headers]
        if envelope.upstream_edits is not None:  # request hooks' headers vary the answers
            gateway_set += envelope.upstream_edits.key()
        return cache_key(
            self.inner.route.name,
            params,
            sorted(request.GET.lists()),
            envelope.identity_key,
            envelope.forwarded_host,
            envelope.forwarded_proto,
            gateway_set,
            varying,
        )

    async def _fill(self, call: RouteCall) -> Answer:
        """The shared fan-out of a miss runs in its own task (a waiter leaving
        does not stop it), so it holds its own share of the memory budget; the
        answer then lives in the cache, whose size has its own bound."""
        hold = self.inner.budget.hold(call.deadline)
        try:
            return await self.inner.produce(call, hold)
        finally:
            hold.release()
