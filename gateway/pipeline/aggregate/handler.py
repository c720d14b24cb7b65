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
from gateway.errors import GatewayError, HookFailed, MemoryBudgetSpent
from gateway.observe import metrics
from gateway.pipeline.aggregate.budget import Expectation, Hold, MemoryBudget
from gateway.pipeline.aggregate.exchange import Exchange, Next, Shared
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
from gateway.pipeline.hooks import remaining
from gateway.responses import Answer, json_response
from gateway.router import Match
from gateway.routes.model import NO_HOOKS, Aggregate, FieldRef, Hooks, ParamRef, QueryRef, Route
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
        self,
        route: Route,
        aggregate: Aggregate,
        plans: Sequence[BackendPlan],
        budget: MemoryBudget,
        hooks: Hooks = NO_HOOKS,
    ) -> None:
        self.route = route
        self.response_hooks = hooks.response
        self.hooked = bool(hooks.backend or hooks.response)
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

    async def __call__(self, request: GatewayRequest, match: Match) -> HttpResponseBase:
        # Given back by the ASGI handler once the answer has been sent.
        hold = request.envelope.memory = self.budget.hold(self._deadline_at(request.envelope))
        if (media_type := self.stream_type(request)) is not None:
            return self.progressive(request, match, hold, media_type)
        return json_response(await self.produce(request, match, hold))

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
        timeout = self._deadline(envelope)
        finished: asyncio.Queue[tuple[BackendPlan, Outcome] | None] = asyncio.Queue()

        async def call(plan: BackendPlan, earlier: Sequence[Outcome | None]) -> Outcome:
            exchange = Exchange(shared, Outcome(plan.name, plan.required), earlier)
            await plan.call(exchange)
            return exchange.outcome

        async def run() -> list[Outcome]:
            try:
                outcomes = await fan_out(
                    self.plans, call, timeout, lambda p, o: finished.put_nowait((p, o))
                )
                _record(envelope, self.route.name, outcomes)
                return outcomes
            finally:
                finished.put_nowait(None)

        task = asyncio.create_task(run())
        records = stream_records(
            self.plans, self.keys, finished, task, RecordWriter(media_type), envelope, shared
        )
        return ProgressiveResponse(media_type, records, task)

    async def produce(self, request: GatewayRequest, match: Match, hold: Hold) -> Answer:
        """The merged JSON and whether every backend answered (and what response
        hooks changed); raises GatewayError. `hold` keeps the answer's bytes
        counted when this returns."""
        envelope = request.envelope
        shared = self._shared(request, match, hold)
        timeout = self._deadline(envelope)
        if not await hold.admit(self.expected.value):  # this route's answers' peak, in turn
            raise MemoryBudgetSpent("the gateway's memory budget is spent, try again shortly")

        async def call(plan: BackendPlan, earlier: Sequence[Outcome | None]) -> Outcome:
            exchange = Exchange(shared, Outcome(plan.name, plan.required), earlier)
            await plan.call(exchange)
            return exchange.outcome

        outcomes = await fan_out(self.plans, call, timeout)
        _record(envelope, self.route.name, outcomes)
        try:
            if shared.hook_error is not None:  # a backend hook failed: so does the route
                raise shared.hook_error
            body, completed = merge_outcomes(outcomes, self.keys, self.single)
        except GatewayError:
            outcomes.clear()  # the bodies go now, not with the traceback
            raise
        envelope.completed = completed
        status: int = 200
        headers: tuple[tuple[str, str], ...] = ()
        if self.response_hooks:
            body, status, headers = await run_response_hooks(
                self.response_hooks,
                envelope,
                request.scope,
                match.params,
                outcomes,
                self.keys,
                body,
                self.route.timeout,
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

    def _deadline_at(self, envelope: Envelope) -> float:
        """The loop time the route must answer by (its waits for memory end before)."""
        if envelope.deadline is not None:
            return envelope.deadline
        return asyncio.get_running_loop().time() + self.route.timeout

    def _deadline(self, envelope: Envelope) -> float:
        """Seconds left of the route's deadline. With hooks on backends or the
        answer, the deadline is fixed now so that they count against it."""
        if self.hooked and envelope.deadline is None:
            envelope.deadline = asyncio.get_running_loop().time() + self.route.timeout
        return remaining(envelope, self.route.timeout)

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
            base_headers=[
                _ACCEPT,
                _ACCEPT_ENCODING,
                *gateway_headers(request.envelope),
            ],
            hold=hold,
            envelope=request.envelope,
            scope=request.scope,
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
