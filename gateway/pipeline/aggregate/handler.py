"""The handler of an aggregate (`backends`) route: check the client's values,
fan out, merge, answer JSON (SPEC 3.1, 3.3, 3.6).

Everything that does not depend on the request is prepared in `__init__`, at
load time: upstream origins, shapes, header allow-lists, static headers.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx
import orjson
from django.http import HttpResponse

from gateway.envelope import BackendLog, GatewayRequest
from gateway.errors import GatewayError, MemoryBudgetSpent
from gateway.observe import metrics
from gateway.pipeline.aggregate.budget import Hold, MemoryBudget
from gateway.pipeline.aggregate.calls import BackendCall, BackendPlan
from gateway.pipeline.aggregate.fanout import fan_out
from gateway.pipeline.aggregate.merge import merge_outcomes
from gateway.pipeline.aggregate.outcome import Outcome
from gateway.pipeline.aggregate.shape import compile_shape
from gateway.policies import identity_header_names
from gateway.policies.cache import Coalescer, cache_key
from gateway.router import Match
from gateway.routes.model import FieldRef, ParamRef, QueryRef, Route, RouteTable
from gateway.upstream.attempts import UpstreamGuard
from gateway.upstream.render import RenderInput, encode_segment, upstream_headers
from gateway.upstream.requests import Origin

__all__ = ["AggregateHandler", "CachedAggregate"]

# Owned by the gateway for aggregate calls, whatever a forward_headers list says.
_NOT_FORWARDED = frozenset({b"accept-encoding"})


class AggregateHandler:
    def __init__(
        self,
        route: Route,
        table: RouteTable,
        clients: Mapping[str, httpx.AsyncClient],
        guards: Mapping[str, UpstreamGuard],
        budget: MemoryBudget,
    ) -> None:
        self.route = route
        self.budget = budget
        settings, upstreams = table.settings, table.upstreams
        referenced = frozenset().union(*(b.depends_on for b in route.backends))
        never = _NOT_FORWARDED | identity_header_names(table)
        keys = {b.key: i for i, b in enumerate(route.backends) if b.key}
        self.single = len(route.backends) == 1
        self.keys = tuple(b.key for b in route.backends)
        self.plans = tuple(
            BackendPlan(
                index=i,
                name=b.name,
                required=b.required,
                deps=tuple(keys[k] for k in sorted(b.depends_on)),
                dep_keys=tuple(sorted(b.depends_on)),
                backend=b,
                upstream=upstreams[b.upstream],
                client=clients[b.upstream],
                origin=Origin(upstreams[b.upstream]),
                guard=guards[b.upstream],
                shape=compile_shape(b),
                must_be_object=b.key is None and not self.single,
                forward=frozenset(
                    h.encode() for h in (*settings.forward_headers, *b.forward_headers)
                )
                - never,
                static_headers=upstream_headers(upstreams[b.upstream]),
                max_size=settings.max_response_size,
                splice=compile_shape(b).is_identity
                and (b.key is not None or self.single)
                and b.key not in referenced,
            )
            for i, b in enumerate(route.backends)
        )
        refs = [
            r for b in route.backends for t in (b.path, *(q for _, q in b.query)) for r in t.refs
        ]
        # Client values that land in an upstream path: checked before any call.
        self.path_refs = tuple(
            {r for b in route.backends for r in b.path.refs if not isinstance(r, FieldRef)}
        )
        self.reads_query = any(isinstance(r, QueryRef) for r in refs)
        self.sends_body = any(b.method == "POST" for b in route.backends)
        # Headers whose values reach a backend, so vary its answer (cache key).
        self.varying = tuple(sorted(frozenset().union(*(p.forward for p in self.plans))))

    async def produce(
        self, request: GatewayRequest, match: Match, hold: Hold
    ) -> tuple[bytes, bool]:
        """The merged JSON and whether every backend answered; raises GatewayError.
        `hold` keeps the answer's bytes counted when this returns."""
        query: dict[str, str] = {}
        if self.reads_query:
            query = {k: v[0] for k, v in request.GET.lists() if v}
        values = RenderInput(match.params, match.path_params, query)
        self._check_client_values(values)
        ctx = request.gateway
        call = BackendCall(request, values, self.sends_body, hold)
        outcomes = await fan_out(self.plans, call, self.route.timeout)
        _record(request, self.route.name, outcomes)
        try:
            body, completed = merge_outcomes(outcomes, self.keys, self.single)
        except GatewayError:
            outcomes.clear()  # the bodies go now, not with the traceback
            raise
        ctx.completed = completed
        # The answer is about as large as the bodies it holds; serialising it
        # may need twice that while the writer grows.
        answer = 2 * sum(o.size for o in outcomes if o.ok) + 1024
        if not hold.take(answer):
            raise MemoryBudgetSpent("the gateway's memory budget is spent, try again shortly")
        content = orjson.dumps(body)
        del body, outcomes
        hold.keep(len(content))  # the bodies are gone; the answer stays until sent
        return content, completed

    async def __call__(self, request: GatewayRequest, match: Match) -> HttpResponse:
        # Given back by the handler once the answer has been sent.
        hold = request.gateway.memory = self.budget.hold()
        content, completed = await self.produce(request, match, hold)
        return json_response(content, completed)

    def _check_client_values(self, values: RenderInput) -> None:
        """Refuse unsafe path values (400) before any upstream is called."""
        for ref in self.path_refs:
            if isinstance(ref, ParamRef):
                segments = values.path_params.get(ref.name)
                for segment in segments if segments is not None else (values.params[ref.name],):
                    encode_segment(segment, f"parameter {ref.name!r}")
            else:
                encode_segment(values.query.get(ref.name, ""), f"query parameter {ref.name!r}")


class CachedAggregate:
    """An aggregate route with `cache`: GET (and HEAD) answers come from the
    store when they can; identical misses in flight share one fan-out."""

    def __init__(self, inner: AggregateHandler, ttl: float, coalescer: Coalescer) -> None:
        self.inner = inner
        self.ttl = ttl
        self.coalescer = coalescer

    async def __call__(self, request: GatewayRequest, match: Match) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return await self.inner(request, match)
        ctx = request.gateway
        params = sorted(
            (name, list(match.path_params.get(name, (value,))))
            for name, value in match.params.items()
        )
        varying = [
            (n.decode("latin-1"), v.decode("latin-1"))
            for n, v in request.scope["headers"]
            if n in self.inner.varying
        ]
        gateway_set = [(n.decode(), v.decode("latin-1")) for n, v in ctx.identity_headers]
        key = cache_key(
            self.inner.route.name,
            params,
            sorted(request.GET.lists()),
            ctx.identity_key,
            ctx.forwarded_host,
            ctx.forwarded_proto,
            gateway_set,
            varying,
        )
        filled = await self.coalescer.get_or_compute(
            key, self.ttl, lambda: self._fill(request, match)
        )
        response = json_response(filled.content, filled.completed)
        response.headers["X-Cache"] = "HIT" if filled.hit else "MISS"
        return response

    async def _fill(self, request: GatewayRequest, match: Match) -> tuple[bytes, bool]:
        """The shared fan-out of a miss runs in its own task (a waiter leaving
        does not stop it), so it holds its own share of the memory budget; the
        answer then lives in the cache, whose size has its own bound."""
        hold = self.inner.budget.hold()
        try:
            return await self.inner.produce(request, match, hold)
        finally:
            hold.release()


def _record(request: GatewayRequest, route: str, outcomes: list[Outcome]) -> None:
    """Each backend's result, for the access log and metrics."""
    for outcome in outcomes:
        label = outcome.outcome_label
        metrics.observe_backend(route, outcome.name, label)
        request.gateway.backends.append(
            BackendLog(outcome.name, outcome.status, outcome.duration, outcome.attempts, label)
        )


def json_response(content: bytes, completed: bool) -> HttpResponse:
    response = HttpResponse(content, content_type="application/json")
    response.headers["Content-Length"] = str(len(content))
    response.headers["X-Gateway-Completed"] = "true" if completed else "false"
    return response
