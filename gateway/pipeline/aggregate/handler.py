"""The handler of an aggregate route: check the client's values, fan out the
backends' chains of stages, merge, answer JSON (SPEC 3.1, 3.3).

Everything that does not depend on the request was prepared when the routes
loaded (gateway/pipeline/aggregate/__init__.py): each backend's chain, its
upstream origin, the header allow-lists and static headers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from django.http.response import HttpResponseBase

from gateway.envelope import BackendLog, Envelope, GatewayRequest
from gateway.errors import GatewayError, MemoryBudgetSpent
from gateway.observe import metrics
from gateway.pipeline.aggregate.budget import Hold, MemoryBudget
from gateway.pipeline.aggregate.exchange import Exchange, Next, Shared
from gateway.pipeline.aggregate.fanout import fan_out
from gateway.pipeline.aggregate.merge import merge_outcomes
from gateway.pipeline.aggregate.outcome import Outcome
from gateway.pipeline.aggregate.progressive import (
    ProgressiveResponse,
    RecordWriter,
    preferred_stream,
    stream_records,
)
from gateway.responses import json_response
from gateway.router import Match
from gateway.routes.model import Aggregate, FieldRef, ParamRef, QueryRef, Route
from gateway.upstream.render import RenderInput, encode_segment, gateway_headers

__all__ = ["AggregateHandler", "BackendPlan"]

# Aggregate calls ask for JSON in an encoding the gateway decodes itself.
_ACCEPT = (b"accept", b"application/json")
_ACCEPT_ENCODING = (b"accept-encoding", b"gzip, deflate")


@dataclass(frozen=True, slots=True)
class BackendPlan:
    """One backend of the route: where it stands in the fan-out, and its chain."""

    index: int
    name: str
    required: bool
    deps: tuple[int, ...]  # indices of the backends whose bodies it reads
    call: Next


class AggregateHandler:
    def __init__(
        self, route: Route, aggregate: Aggregate, plans: Sequence[BackendPlan], budget: MemoryBudget
    ) -> None:
        self.route = route
        self.plans = tuple(plans)
        self.budget = budget
        backends = aggregate.backends
        self.single = len(backends) == 1
        self.keys = tuple(b.key for b in backends)
        refs = [r for b in backends for t in (b.path, *(q for _, q in b.query)) for r in t.refs]
        # Client values that land in an upstream path: checked before any call.
        self.path_refs = tuple(
            {r for b in backends for r in b.path.refs if not isinstance(r, FieldRef)}
        )
        self.reads_query = any(isinstance(r, QueryRef) for r in refs)
        self.sends_body = any(b.method == "POST" for b in backends)
        self.streams = aggregate.stream

    async def __call__(self, request: GatewayRequest, match: Match) -> HttpResponseBase:
        # Given back by the ASGI handler once the answer has been sent.
        hold = request.envelope.memory = self.budget.hold()
        if (media_type := self.stream_type(request)) is not None:
            return self.progressive(request, match, hold, media_type)
        content, completed = await self.produce(request, match, hold)
        return json_response(content, completed)

    def stream_type(self, request: GatewayRequest) -> str | None:
        """SSE or NDJSON when the route streams and the client prefers one."""
        if not self.streams or request.method == "HEAD":
            return None
        accept = request.META.get("HTTP_ACCEPT")
        return preferred_stream(accept) if accept else None

    def progressive(
        self, request: GatewayRequest, match: Match, hold: Hold, media_type: str
    ) -> ProgressiveResponse:
        """The stream of records (progressive.py); the client's values are
        checked first, so that a bad one is still a plain 400."""
        envelope = request.envelope
        shared = self._shared(request, match, hold)
        finished: asyncio.Queue[tuple[BackendPlan, Outcome] | None] = asyncio.Queue()

        async def call(plan: BackendPlan, earlier: Sequence[Outcome | None]) -> Outcome:
            exchange = Exchange(shared, Outcome(plan.name, plan.required), earlier)
            await plan.call(exchange)
            return exchange.outcome

        async def run() -> list[Outcome]:
            try:
                outcomes = await fan_out(
                    self.plans, call, self.route.timeout, lambda p, o: finished.put_nowait((p, o))
                )
                _record(envelope, self.route.name, outcomes)
                return outcomes
            finally:
                finished.put_nowait(None)

        task = asyncio.create_task(run())
        records = stream_records(
            self.plans, self.keys, finished, task, RecordWriter(media_type), envelope
        )
        return ProgressiveResponse(media_type, records, task)

    async def produce(
        self, request: GatewayRequest, match: Match, hold: Hold
    ) -> tuple[bytes, bool]:
        """The merged JSON and whether every backend answered; raises GatewayError.
        `hold` keeps the answer's bytes counted when this returns."""
        envelope = request.envelope
        shared = self._shared(request, match, hold)

        async def call(plan: BackendPlan, earlier: Sequence[Outcome | None]) -> Outcome:
            exchange = Exchange(shared, Outcome(plan.name, plan.required), earlier)
            await plan.call(exchange)
            return exchange.outcome

        outcomes = await fan_out(self.plans, call, self.route.timeout)
        _record(envelope, self.route.name, outcomes)
        try:
            body, completed = merge_outcomes(outcomes, self.keys, self.single)
        except GatewayError:
            outcomes.clear()  # the bodies go now, not with the traceback
            raise
        envelope.completed = completed
        # The answer is about as large as the bodies it holds; serialising it
        # may need twice that while the writer grows.
        answer = 2 * sum(o.size for o in outcomes if o.ok) + 1024
        if not hold.take(answer):
            raise MemoryBudgetSpent("the gateway's memory budget is spent, try again shortly")
        content = orjson.dumps(body)
        del body, outcomes
        hold.keep(len(content))  # the bodies are gone; the answer stays until sent
        return content, completed

    def _shared(self, request: GatewayRequest, match: Match, hold: Hold) -> Shared:
        query: dict[str, str] = {}
        if self.reads_query:
            query = {k: v[0] for k, v in request.GET.lists() if v}
        values = RenderInput(match.params, match.path_params, query)
        self._check_client_values(values)
        return Shared(
            values=values,
            headers=request.scope["headers"],
            body=request.body if self.sends_body else b"",
            content_type=request.META.get("CONTENT_TYPE", ""),
            base_headers=[_ACCEPT, _ACCEPT_ENCODING, *gateway_headers(request.envelope)],
            hold=hold,
        )

    def _check_client_values(self, values: RenderInput) -> None:
        """Refuse unsafe path values (400) before any upstream is called."""
        for ref in self.path_refs:
            if isinstance(ref, ParamRef):
                segments = values.path_params.get(ref.name)
                for segment in segments if segments is not None else (values.params[ref.name],):
                    encode_segment(segment, f"parameter {ref.name!r}")
            else:
                encode_segment(values.query.get(ref.name, ""), f"query parameter {ref.name!r}")


def _record(envelope: Envelope, route: str, outcomes: list[Outcome]) -> None:
    """Each backend's result, for the access log and metrics."""
    for outcome in outcomes:
        label = outcome.outcome_label
        metrics.observe_backend(route, outcome.name, label)
        envelope.backends.append(
            BackendLog(outcome.name, outcome.status, outcome.duration, outcome.attempts, label)
        )
