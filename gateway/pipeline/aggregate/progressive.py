"""Progressive aggregation (SPEC 3.11, `stream: true`): one record per backend
as it finishes, instead of one answer once the slowest has.

When the request's Accept prefers `text/event-stream` or
`application/x-ndjson`, the route answers 200 with that type as soon as the
client's values have been checked (auth and rate limits ran before), then:

    {"event": "part", "name": ..., "key": ..., "status": "ok", "body": <shaped>}
    {"event": "part", "name": ..., "key": ..., "status": "failed", "error": <why>}
    {"event": "done", "completed": true|false}
    or, last, when the plain request would have failed:
    {"event": "error", "problem": <the problem+json that request would have got>}

in the order the backends finish (a failed optional backend is a "failed"
part; a failed required one ends the stream with "error"). As SSE each record
is `event: <event>` and `data: <the record without "event">`; as NDJSON one
JSON object per line. Merging the "ok" parts in route order (a part whose key
is null merged at the top level) gives exactly the plain JSON answer.
Streams are never cached.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from gateway.errors import error_body
from gateway.pipeline.aggregate.merge import route_failure
from gateway.pipeline.aggregate.outcome import Outcome
from gateway.responses import RelayedResponse
from gateway.types import Failure, contract_word

if TYPE_CHECKING:
    from gateway.envelope import Envelope
    from gateway.pipeline.aggregate.exchange import Fanout
    from gateway.pipeline.aggregate.handler import BackendPlan

__all__ = [
    "NDJSON",
    "SSE",
    "ProgressiveResponse",
    "RecordWriter",
    "preferred_stream",
    "stream_records",
]

SSE = "text/event-stream"
NDJSON = "application/x-ndjson"
_JSON = "application/json"


def preferred_stream(accept: str) -> str | None:
    """SSE or NDJSON when the Accept header prefers one of them to JSON: the
    highest q wins; on a tie, the media range written first; a tie on the same
    range (`*/*`) is plain JSON."""
    ranges: list[tuple[str, float, int]] = []
    for index, item in enumerate(accept.split(",")):
        media, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media:
            ranges.append((media.lower(), q, index))
    best: tuple[float, int, int] | None = None  # (q, -index, plain first)
    choice = None
    for rank, candidate in enumerate((_JSON, SSE, NDJSON)):
        match = _match(candidate, ranges)
        if match is None or match[0] <= 0:
            continue
        key = (match[0], -match[1], -rank)
        if best is None or key > best:
            best, choice = key, candidate
    return choice if choice in (SSE, NDJSON) else None


def _match(candidate: str, ranges: list[tuple[str, float, int]]) -> tuple[float, int] | None:
    """(q, position) of the most specific range that covers `candidate`."""
    kind = candidate.split("/")[0]
    for pattern in (candidate, f"{kind}/*", "*/*"):
        for media, q, index in ranges:
            if media == pattern:
                return q, index
    return None


class ProgressiveResponse(RelayedResponse):
    """The stream; the fan-out runs in its own task, and stops with the response."""

    def __init__(self, media_type: str, records: AsyncIterator[bytes], task: asyncio.Task[Any]):
        headers = [(b"content-type", media_type.encode()), (b"cache-control", b"no-cache")]
        if media_type == SSE:
            headers.append((b"x-accel-buffering", b"no"))
        super().__init__(200, headers, records)
        self._task = task

    async def aclose_upstream(self) -> None:
        if not self._task.done():
            self._task.cancel()


class RecordWriter:
    """Records in the negotiated format."""

    def __init__(self, media_type: str) -> None:
        self.sse = media_type == SSE

    def __call__(self, event: str, record: dict[str, Any]) -> bytes:
        if self.sse:
            return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(record) + b"\n\n"
        return orjson.dumps({"event": event, **record}) + b"\n"


async def stream_records(
    plans: Sequence[BackendPlan],
    keys: Sequence[str | None],
    finished: asyncio.Queue[tuple[BackendPlan, Outcome] | None],
    task: asyncio.Task[list[Outcome]],
    write: RecordWriter,
    envelope: Envelope,
    fanout: Fanout,
) -> AsyncIterator[bytes]:
    """The records, as `task` (the fan-out) puts finished backends in `finished`
    (None once it is over)."""
    reported: dict[int, Outcome] = {}
    try:
        while (item := await finished.get()) is not None:
            plan, outcome = item
            reported[plan.index] = outcome
            if outcome.ok:
                yield write("part", _part(plan, keys, "ok", body=outcome.body))
            elif not plan.required and outcome.failure is not Failure.CANCELLED:
                why = _why(outcome, plan, plans, reported)
                yield write("part", _part(plan, keys, "failed", error=why))
        outcomes = task.result()
        for plan, outcome in zip(plans, outcomes, strict=True):
            # stopped by the route deadline: never reported as finished
            late = plan.index not in reported and outcome.failure not in (None, Failure.CANCELLED)
            if late and not plan.required:
                why = _why(outcome, plan, plans, reported)
                yield write("part", _part(plan, keys, "failed", error=why))
        error = fanout.hook_error or route_failure(outcomes)
        if error is not None:
            problem = error_body(error, request_id=envelope.request_id, route=envelope.route_name)
            yield write("error", {"problem": orjson.Fragment(problem)})
        else:
            completed = all(o.ok for o in outcomes)
            envelope.log.completed = completed
            yield write("done", {"completed": completed})
    finally:
        if not task.done():
            task.cancel()


def _part(
    plan: BackendPlan, keys: Sequence[str | None], status: str, **rest: Any
) -> dict[str, Any]:
    return {"name": plan.name, "key": keys[plan.index], "status": status, **rest}


def _why(
    outcome: Outcome,
    plan: BackendPlan,
    plans: Sequence[BackendPlan],
    reported: dict[int, Outcome],
) -> str:
    """The contract's word for a failure; a backend that could not run because
    one it reads failed gives that one's reason."""
    if outcome.failure is Failure.DEPENDENCY:
        for dep in plan.deps:
            earlier = reported.get(dep)
            if earlier is not None and not earlier.ok:
                return _why(earlier, plans[dep], plans, reported)
    return contract_word(outcome.failure) if outcome.failure else "connection"
