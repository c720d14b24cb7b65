"""One backend of an aggregate route: its plan (built at load) and its call
for one request (render -> send -> shape)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from gateway.envelope import GatewayRequest
from gateway.pipeline.aggregate.budget import Hold
from gateway.pipeline.aggregate.outcome import Failure, Outcome
from gateway.pipeline.aggregate.send import call_backend
from gateway.pipeline.aggregate.shape import Shape, ShapeError, shape_body
from gateway.routes.model import Backend, Upstream
from gateway.upstream.attempts import UpstreamGuard
from gateway.upstream.render import (
    MissingField,
    RenderInput,
    gateway_headers,
    render_path,
    render_query,
)
from gateway.upstream.requests import Origin, build_request

__all__ = ["BackendCall", "BackendPlan"]

# Aggregate calls ask for JSON in an encoding httpx can decode.
_ACCEPT = (b"accept", b"application/json")
_ACCEPT_ENCODING = (b"accept-encoding", b"gzip, deflate")


@dataclass(frozen=True, slots=True)
class BackendPlan:
    index: int
    name: str
    required: bool
    deps: tuple[int, ...]  # indices of the backends whose bodies this one reads
    dep_keys: tuple[str, ...]  # ... and their keys, in the same order
    backend: Backend
    upstream: Upstream
    client: httpx.AsyncClient
    origin: Origin
    guard: UpstreamGuard
    shape: Shape
    must_be_object: bool  # merged at the top level: its body must be an object
    forward: frozenset[bytes]  # client headers copied to this backend
    static_headers: tuple[tuple[bytes, bytes], ...]
    max_size: int
    splice: bool  # nothing reads or shapes its body: validated, kept as bytes


class BackendCall:
    """Renders and performs one backend's call for one request; the fan-out
    calls it once per plan."""

    __slots__ = ("base", "body", "content_type", "headers", "hold", "values")

    def __init__(
        self, request: GatewayRequest, values: RenderInput, sends_body: bool, hold: Hold
    ) -> None:
        self.values = values
        self.hold = hold
        self.headers = request.scope["headers"]
        self.body = request.body if sends_body else b""
        self.content_type = request.META.get("CONTENT_TYPE", "")
        self.base = [_ACCEPT, _ACCEPT_ENCODING, *gateway_headers(request.gateway)]

    async def __call__(self, plan: BackendPlan, done: Sequence[Outcome | None]) -> Outcome:
        outcome = Outcome(plan.name, plan.required)
        values = self.values
        if plan.deps:
            bodies = {}
            for dep, key in zip(plan.deps, plan.dep_keys, strict=True):
                earlier = done[dep]
                if earlier is None or not earlier.ok:
                    outcome.failure = Failure.DEPENDENCY
                    return outcome
                bodies[key] = earlier.raw
            values = RenderInput(values.params, values.path_params, values.query, bodies)
        backend, upstream = plan.backend, plan.upstream
        try:
            path = upstream.base_path + render_path(backend.path, values)
            query = render_query(backend.query, values) if backend.query else ""
        except MissingField as exc:
            outcome.failure = Failure.DEPENDENCY
            outcome.detail = f"could not run: {exc}"
            return outcome
        headers = list(self.base)
        headers.extend((n, v) for n, v in self.headers if n in plan.forward)
        headers.extend(plan.static_headers)
        content = None
        if backend.method == "POST":
            content = self.body
            if self.content_type:
                headers.append((b"content-type", self.content_type.encode("latin-1")))
        request = build_request(
            backend.method,
            plan.origin.url(path, query),
            plan.origin.host_header,
            headers,
            content,
            # No transport timeouts: call_backend's per-attempt deadline already
            # covers connecting, the headers and the whole body.
        )
        await call_backend(
            plan.guard,
            plan.client,
            request,
            outcome,
            attempt_timeout=upstream.timeout,
            max_size=plan.max_size,
            hold=self.hold,
            splice=plan.splice,
        )
        if outcome.ok:
            self._shape(plan, outcome)
        if not outcome.ok:
            outcome.raw = outcome.body = None  # nothing reads a failed body: let it go now
        return outcome

    def _shape(self, plan: BackendPlan, outcome: Outcome) -> None:
        # Shaping builds new objects and lists beside the parsed ones (the
        # values inside are shared): hold what those cost.
        if not plan.shape.is_identity and not self.hold.take(outcome.containers):
            outcome.failure = Failure.MEMORY
            return
        try:
            body = outcome.raw if plan.shape.is_identity else shape_body(outcome.raw, plan.shape)
        except ShapeError as exc:
            outcome.failure, outcome.detail = Failure.SHAPE, f"answered without {exc}"
            return
        if plan.must_be_object and not isinstance(body, dict):
            outcome.failure = Failure.SHAPE
            outcome.detail = "answered with a body that is not an object (give it a `key`)"
            return
        outcome.body = body
