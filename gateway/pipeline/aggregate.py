"""The handler of an aggregate (`backends`) route: render each backend's call,
fan out, shape, merge, answer JSON (SPEC 3.1, 3.3).

Everything that does not depend on the request is prepared in `__init__`, at
load time: upstream origins, shapes, header allow-lists, static headers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx
import orjson
from django.http import HttpResponse

from ..config.model import Backend, FieldRef, GatewaySettings, ParamRef, QueryRef, Route, Upstream
from ..context import GatewayRequest
from ..router import Match
from .backend import call_upstream
from .fanout import fan_out
from .merge import merge_outcomes
from .outcome import Failure, Outcome
from .request import MissingField, RenderInput, encode_segment, render_path, render_query
from .shape import Shape, ShapeError, compile_shape, shape_body

__all__ = ["AggregateHandler"]

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
    shape: Shape
    must_be_object: bool  # merged at the top level: its body must be an object
    forward: frozenset[bytes]  # client headers copied to this backend
    static_headers: tuple[tuple[bytes, bytes], ...]
    max_size: int


class AggregateHandler:
    def __init__(
        self,
        route: Route,
        settings: GatewaySettings,
        upstreams: Mapping[str, Upstream],
        clients: Mapping[str, httpx.AsyncClient],
    ) -> None:
        self.route = route
        keys = {b.key: i for i, b in enumerate(route.backends) if b.key}
        single = len(route.backends) == 1
        self.single = single
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
                shape=compile_shape(b),
                must_be_object=b.key is None and not single,
                forward=frozenset(
                    h.encode()
                    for h in (*settings.forward_headers, *b.forward_headers)
                    if h not in ("accept-encoding",)
                ),
                static_headers=tuple(
                    (n.encode(), v.encode("latin-1")) for n, v in upstreams[b.upstream].headers
                ),
                max_size=settings.max_response_size,
            )
            for i, b in enumerate(route.backends)
        )
        templates = [t for b in route.backends for t in (b.path, *(q for _, q in b.query))]
        refs = [r for t in templates for r in t.refs]
        # Client values that land in an upstream path: checked before any call.
        self.path_refs = tuple(
            {r for b in route.backends for r in b.path.refs if not isinstance(r, FieldRef)}
        )
        self.reads_query = any(isinstance(r, QueryRef) for r in refs)
        self.sends_body = any(b.method == "POST" for b in route.backends)

    async def __call__(self, request: GatewayRequest, match: Match) -> HttpResponse:
        query: dict[str, str] = {}
        if self.reads_query:
            query = {k: v[0] for k, v in request.GET.lists() if v}
        values = RenderInput(match.params, match.path_params, query)
        self._check_client_values(values)
        call = _Call(request, values, self.sends_body)
        outcomes = await fan_out(self.plans, call, self.route.timeout)
        body, completed = merge_outcomes(outcomes, self.keys, self.single)
        content = orjson.dumps(body)
        response = HttpResponse(content, content_type="application/json")
        response.headers["Content-Length"] = str(len(content))
        response.headers["X-Gateway-Completed"] = "true" if completed else "false"
        return response

    def _check_client_values(self, values: RenderInput) -> None:
        """Refuse unsafe path values (400) before any upstream is called."""
        probe = _Probe(values)
        for ref in self.path_refs:
            probe.check(ref)


class _Probe:
    def __init__(self, values: RenderInput) -> None:
        self.values = values

    def check(self, ref: ParamRef | QueryRef) -> None:
        if isinstance(ref, ParamRef):
            segments = self.values.path_params.get(ref.name)
            for segment in segments if segments is not None else (self.values.params[ref.name],):
                encode_segment(segment, f"parameter {ref.name!r}")
        else:
            encode_segment(self.values.query.get(ref.name, ""), f"query parameter {ref.name!r}")


class _Call:
    """Renders and performs one backend's call for one request."""

    __slots__ = ("base", "body", "content_type", "headers", "values")

    def __init__(self, request: GatewayRequest, values: RenderInput, sends_body: bool) -> None:
        ctx = request.gateway
        self.values = values
        self.headers = request.scope["headers"]
        self.body = request.body if sends_body else b""
        self.content_type = request.META.get("CONTENT_TYPE", "")
        self.base = [
            _ACCEPT,
            _ACCEPT_ENCODING,
            (b"x-request-id", ctx.request_id.encode()),
            (b"x-forwarded-for", ctx.forwarded_for.encode("latin-1")),
            (b"x-forwarded-proto", ctx.forwarded_proto.encode("latin-1")),
            (b"x-forwarded-host", ctx.forwarded_host.encode("latin-1")),
        ]

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
        raw = path + "?" + query if query else path
        headers = list(self.base)
        headers.extend((n, v) for n, v in self.headers if n in plan.forward)
        headers.extend(plan.static_headers)
        content = None
        if backend.method == "POST":
            content = self.body
            if self.content_type:
                headers.append((b"content-type", self.content_type.encode("latin-1")))
        url = httpx.URL(
            scheme=upstream.scheme,
            host=upstream.host,
            port=upstream.port,
            raw_path=raw.encode("ascii"),
        )
        request = httpx.Request(backend.method, url, headers=headers, content=content)
        await call_upstream(
            plan.client, request, outcome, attempt_timeout=upstream.timeout, max_size=plan.max_size
        )
        if outcome.ok:
            try:
                outcome.body = (
                    outcome.raw if plan.shape.is_identity else shape_body(outcome.raw, plan.shape)
                )
            except ShapeError as exc:
                outcome.failure, outcome.detail = Failure.SHAPE, f"answered without {exc}"
            else:
                if plan.must_be_object and not isinstance(outcome.body, dict):
                    outcome.failure = Failure.SHAPE
                    outcome.detail = "answered with a body that is not an object (give it a `key`)"
        return outcome
