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

from gateway.envelope import BackendLog, Envelope, GatewayRequest, RouteCall
from gateway.errors import GatewayError, HookFailed, MemoryBudgetSpent
from gateway.observe import metrics
from gateway.pipeline.aggregate.exchange import Exchange, Fanout, Next
from gateway.pipeline.aggregate.fanout import fan_out
from gateway.pipeline.aggregate.hooked import run_response_hooks
from gateway.pipeline.aggregate.merge import merge_outcomes
from gateway.pipeline.aggregate.outcome import Outcome
from gateway.pipeline.aggregate.progressive import (
    ProgressiveResponse,
    RecordWriter,
    preferred_stream,
    stream_records,
)
from gateway.pipeline.hooks import stage_hooks
from gateway.responses import Answer, json_response
from gateway.routes.model import NO_HOOKS, Aggregate, FieldRef, Hooks, ParamRef, QueryRef, Route
from gateway.stores.memory_budget import Expectation, Hold, MemoryBudget
from gateway.upstream.render import RenderInput, encode_segment

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
        self,
        route: Route,
        aggregate: Aggregate,
        plans: Sequence[BackendPlan],
        budget: MemoryBudget,
        hooks: Hooks = NO_HOOKS,
    ) -> None:
        self.route = route
        self.response_hooks = stage_hooks("response", hooks.response)
        self.plans = tuple(plans)
        self.budget = budget
        self.expected = Expectation()  # what this route's answers need of the budget
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

    async def __call__(self, call: RouteCall) -> HttpResponseBase:
        request = call.http
        hold = self.budget.hold(call.deadline)
        call.envelope.after_answer.append(hold.release)  # once the answer has been sent
        if (media_type := self.stream_type(request)) is not None:
            return self.progressive(call, hold, media_type)
        return json_response(await self.produce(call, hold))

    def stream_type(self, request: GatewayRequest) -> str | None:
        """SSE or NDJSON when the route streams and the client prefers one."""
        if not self.streams or request.method == "HEAD":
            return None
        accept = request.META.get("HTTP_ACCEPT")
        return preferred_stream(accept) if accept else None

    def progressive(self, call: RouteCall, hold: Hold, media_type: str) -> ProgressiveResponse:
        """The stream of records (progressive.py); the client's values are
        checked first, so that a bad one is still a plain 400."""
        envelope = call.envelope
        fanout = self._fanout(call, hold)
        finished: asyncio.Queue[tuple[BackendPlan, Outcome] | None] = asyncio.Queue()

        async def one(plan: BackendPlan, earlier: Sequence[Outcome | None]) -> Outcome:
            exchange = Exchange(fanout, Outcome(plan.name, plan.required), earlier)
            await plan.call(exchange)
            return exchange.outcome

        async def run() -> list[Outcome]:
            try:
                outcomes = await fan_out(
                    self.plans, one, call.remaining(), lambda p, o: finished.put_nowait((p, o))
                )
                _record(envelope, self.route.name, outcomes)
                return outcomes
            finally:
                finished.put_nowait(None)

        task = asyncio.create_task(run())
        records = stream_records(
            self.plans, self.keys, finished, task, RecordWriter(media_type), envelope, fanout
        )
        return ProgressiveResponse(media_type, records, task)

    async def produce(self, call: RouteCall, hold: Hold) -> Answer:
        """The merged JSON and whether every backend answered (and what response
        hooks changed); raises GatewayError. `hold` keeps the answer's bytes
        counted when this returns."""
        envelope = call.envelope
        fanout = self._fanout(call, hold)
        if not await hold.admit(self.expected.value):  # this route's answers' peak, in turn
            raise MemoryBudgetSpent("the gateway's memory budget is spent, try again shortly")

        async def one(plan: BackendPlan, earlier: Sequence[Outcome | None]) -> Outcome:
            exchange = Exchange(fanout, Outcome(plan.name, plan.required), earlier)
            await plan.call(exchange)
            return exchange.outcome

        outcomes = await fan_out(self.plans, one, call.remaining())
        _record(envelope, self.route.name, outcomes)
        try:
            if fanout.hook_error is not None:  # a backend hook failed: so does the route
                raise fanout.hook_error
            body, completed = merge_outcomes(outcomes, self.keys, self.single)
        except GatewayError:
            outcomes.clear()  # the bodies go now, not with the traceback
            raise
        envelope.log.completed = completed
        status: int = 200
        headers: tuple[tuple[str, str], ...] = ()
        if self.response_hooks:
            body, status, headers = await run_response_hooks(
                self.response_hooks, call, hold, outcomes, self.keys, body
            )
        # The answer is about as large as the bodies it holds; serialising it
        # may need twice that while the writer grows.
        answer = 2 * sum(o.size for o in outcomes if o.ok) + 1024
        if not await hold.take(answer):
            raise MemoryBudgetSpent("the gateway's memory budget is spent, try again shortly")
        try:
            content = orjson.dumps(body)
        except orjson.JSONEncodeError:
            if not self.response_hooks:
                raise
            raise HookFailed("the response hooks left a body that is not JSON") from None
        del body, outcomes
        self.expected.observe(hold.peak)  # what the next requests reserve before they start
        hold.keep(len(content))  # the bodies are gone; the answer stays until sent
        return Answer(content, completed, status, headers)

    def _fanout(self, call: RouteCall, hold: Hold) -> Fanout:
        request = call.http
        query: dict[str, str] = {}
        if self.reads_query:
            query = {k: v[0] for k, v in request.GET.lists() if v}
        match = call.match
        values = RenderInput(match.params, match.path_params, query)
        self._check_client_values(values)
        return Fanout(
            call=call,
            values=values,
            body=request.body if self.sends_body else b"",
            content_type=request.META.get("CONTENT_TYPE", ""),
            base_headers=[_ACCEPT, _ACCEPT_ENCODING, *call.envelope.gateway_headers()],
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
        envelope.log.backends.append(
            BackendLog(outcome.name, outcome.status, outcome.duration, outcome.attempts, label)
        )
