"""The envelope: everything the gateway knows about one request, typed, and
the call a matched request makes down its route's stack.

Each part is written by the layer that owns it, once:

- `Envelope`, by the edge when the request arrives (gateway/edge/intake.py):
  what the router matched, who is asking from where, the request id and
  trace context, credentials taken out of the query, then the body's size
  or the reason it was refused, and whether the answer was cut off;
- `Envelope.caller`, by auth (gateway/policies/auth): who the credential
  says is asking;
- `Envelope.hooked`, by the first hook stage that runs (gateway/pipeline/hooks.py):
  what hooks are shown of the request, what request hooks changed for
  upstreams, and every hook's timing;
- `Envelope.log`, by the route's kind (gateway/pipeline): what each backend
  did, whether the answer is complete, a WebSocket pair's counts;
- `Envelope.mirror`, by the mirror policy when it samples the request
  (gateway/policies/mirror): the kind records each upstream call on it, the
  policy sends them to the mirror once the answer is decided.

`RouteCall` is a matched request on its way down its route's stack (an HTTP
request or a WebSocket handshake): the envelope, the match, the request or
the socket, the route's deadline (fixed once, when the call is made), and
the headers policies add to whatever the answer is. The edge makes it; the
access log reads the envelope once the answer has gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from django.core.handlers.asgi import ASGIRequest

from gateway.router import Match

if TYPE_CHECKING:
    from gateway.bodypump import BodyPump
    from gateway.errors import GatewayError
    from gateway.hooks import Request as HookRequest
    from gateway.observe.trace import TraceContext
    from gateway.router import BadPath, NoMatch
    from gateway.routes.model import Route
    from gateway.types import Receive, Send

__all__ = [
    "BackendLog",
    "Caller",
    "Envelope",
    "GatewayRequest",
    "HookLog",
    "Hooked",
    "MirrorCall",
    "MirrorTap",
    "RelayLog",
    "RouteCall",
    "RouteLog",
    "UpstreamEdits",
    "open_call",
]

_NONE: Mapping[str, str] = MappingProxyType({})
_NO_CLAIMS: Mapping[str, Any] = MappingProxyType({})


class HookLog(NamedTuple):
    """One hook's run, for the access log (a tuple: one per hook call)."""

    name: str  # "module:attribute"
    stage: str  # request, backend or response
    duration: float  # seconds


@dataclass(frozen=True, slots=True)
class BackendLog:
    name: str
    status: int | None
    duration: float  # seconds, every attempt included
    attempts: int
    outcome: str  # "ok" or the failure


@dataclass(slots=True)
class RelayLog:
    """What the access log says of a relayed WebSocket pair (the relay
    counts as it goes)."""

    to_upstream: int = 0  # messages from the client
    to_client: int = 0  # messages from the upstream
    close_code: int | None = None  # the code the side that ended it gave
    closed_by: str = ""  # "client", "upstream" or "gateway"
    cut: str | None = None  # "send_timeout": the client was cut off, reading nothing


@dataclass(frozen=True, slots=True)
class Caller:
    """Who auth said is asking."""

    identity: str
    provider: str  # the provider that vouched for it
    headers: tuple[tuple[bytes, bytes], ...] = ()  # identity headers for backends
    claims: Mapping[str, Any] = _NO_CLAIMS  # a JWT's verified claims (for hooks)
    plan: str | None = None  # the plan its key or token names (SPEC 3.16)

    @property
    def key(self) -> str:
        """The identity qualified by its provider, for rate-limit and cache keys:
        API key id `alice` and JWT `sub: alice` of another provider never meet.
        Provider names cannot hold "/", so the first one separates them."""
        return f"{self.provider}/{self.identity}"


@dataclass(frozen=True, slots=True)
class UpstreamEdits:
    """The upstream headers request hooks set or removed, for every call."""

    set: tuple[tuple[bytes, bytes], ...]
    removed: frozenset[bytes]

    def apply(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        drop = self.removed | {name for name, _ in self.set}
        return [(n, v) for n, v in headers if n not in drop] + list(self.set)

    def key(self) -> list[tuple[str, str]]:
        """For cache keys: the answers of backends vary with these."""
        return sorted(
            [(n.decode(), v.decode("latin-1")) for n, v in self.set]
            + [(n.decode(), "") for n in self.removed]
        )


class Hooked:
    """What the hooks of one request saw and did: the request every hook is
    shown (built once, when a hook first reads it), what request hooks set
    for upstream calls, and each hook's timing."""

    __slots__ = ("_make", "_request", "edits", "log")

    def __init__(self, make: Callable[[], HookRequest]) -> None:
        self._make: Callable[[], HookRequest] | None = make
        self._request: HookRequest | None = None
        self.edits: UpstreamEdits | None = None
        self.log: list[HookLog] = []

    @property
    def request(self) -> HookRequest:
        if self._request is None:
            assert self._make is not None
            self._request, self._make = self._make(), None
        return self._request


type Primary = tuple[int | None, bytes | None]  # the primary's status and body (None: too large)


@dataclass(slots=True, eq=False)
class MirrorCall:
    """One upstream call as the primary made it, to be repeated against the
    mirror upstream: `path` below the upstream's base path, `headers` without
    Host and Content-Length. `primary` is the primary's (status, body) for
    comparison: set when known, or a future a proxied body resolves at its end."""

    method: str
    path: str
    query: str
    headers: list[tuple[bytes, bytes]]
    body: bytes | None
    primary: (
        tuple[int | None, bytes | None] | asyncio.Future[tuple[int | None, bytes | None]] | None
    )


@dataclass(slots=True, eq=False)
class MirrorTap:
    """A sampled request's calls to mirror (`max_body`: the largest body that
    goes with them; `compare`: keep the primary's answers)."""

    max_body: int
    compare: bool
    calls: list[MirrorCall] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class RouteLog:
    """What the route's kind did, for the access log and metrics."""

    backends: list[BackendLog] = field(default_factory=list)
    completed: bool | None = None  # aggregate routes: did every backend answer
    websocket: RelayLog | None = None  # websocket routes: the relayed pair, once it ended
    grpc_status: int | None = None  # grpc routes: the status the call ended with


@dataclass(slots=True, eq=False, kw_only=True)
class Envelope:
    # --- the edge: what it found, before reading the body
    found: Match | NoMatch | BadPath | None  # None when no routes are loaded
    preflight: bool = False  # a CORS preflight, matched to the route of the method it announces
    request_id: str
    client: str  # the client address, for logs and rate limits
    forwarded_for: str  # the X-Forwarded-For value sent to backends
    forwarded_proto: str
    forwarded_host: str
    trace: TraceContext | None = None  # W3C trace context: continued or started here
    query: str = ""  # the query string as the client sent it (logged with credentials masked)
    query_credentials: Mapping[str, str] = _NONE  # provider -> credential from its query_param
    secret_params: frozenset[str] = frozenset()  # query parameters never logged
    # --- the edge: the body, as it was read; how the answer went
    body_size: int = 0
    refused: GatewayError | None = None  # too many query fields; a body: 413, 408
    body_pump: BodyPump | None = None  # the body as it comes (a kind that streams it)
    cut: str | None = None  # the answer was cut off: send_timeout, idle_timeout, upstream_failed
    live: bool = False  # counted in flight on the dashboard (observe/live.py) until logged
    # Given back once the answer has been sent, however it ended (a share of
    # the memory budget): set by the route, run by the edge.
    after_answer: list[Callable[[], None]] = field(default_factory=list)
    # --- the policies and the route, each once
    caller: Caller | None = None  # auth
    hooked: Hooked | None = None  # hooks
    mirror: MirrorTap | None = None  # mirror: this request's calls are repeated
    log: RouteLog = field(default_factory=RouteLog)  # the route's kind

    @property
    def route(self) -> Route | None:
        return self.found.route if isinstance(self.found, Match) else None

    @property
    def route_name(self) -> str | None:
        return self.found.route.name if isinstance(self.found, Match) else None

    @property
    def identity(self) -> str | None:
        return self.caller.identity if self.caller is not None else None

    @property
    def identity_key(self) -> str | None:
        return self.caller.key if self.caller is not None else None

    @property
    def identity_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        return self.caller.headers if self.caller is not None else ()

    @property
    def claims(self) -> Mapping[str, Any]:
        return self.caller.claims if self.caller is not None else _NO_CLAIMS

    @property
    def upstream_edits(self) -> UpstreamEdits | None:
        return self.hooked.edits if self.hooked is not None else None

    @property
    def hook_log(self) -> list[HookLog]:
        return self.hooked.log if self.hooked is not None else []

    def gateway_headers(self) -> list[tuple[bytes, bytes]]:
        """What the gateway itself tells every upstream: the request ID, the
        X-Forwarded-* values it resolved, the identity auth established and the
        trace's tracestate. Each attempt adds its own traceparent (observe/trace.py)."""
        headers = [
            (b"x-request-id", self.request_id.encode()),
            (b"x-forwarded-for", self.forwarded_for.encode("latin-1")),
            (b"x-forwarded-proto", self.forwarded_proto.encode("latin-1")),
            (b"x-forwarded-host", self.forwarded_host.encode("latin-1")),
            *self.identity_headers,
        ]
        if self.trace is not None:
            headers += self.trace.state_headers()
        return headers

    def answered(self) -> None:
        """The answer has gone (or the request ended): give back what it held."""
        releases, self.after_answer = self.after_answer, []
        for release in releases:
            release()


class GatewayRequest(ASGIRequest):
    """Django's ASGI request, with the gateway's envelope (set by the handler)."""

    envelope: Envelope


@dataclass(slots=True, eq=False, kw_only=True)
class RouteCall:
    """A matched request on its way down its route's stack."""

    envelope: Envelope
    match: Match
    scope: Mapping[str, Any]  # the request's or the handshake's (read-only here)
    request: GatewayRequest | None = None  # an HTTP request (None: a WebSocket handshake)
    receive: Receive | None = None  # a WebSocket handshake's
    send: Send | None = None
    deadline: float  # the loop time the route must answer by
    # Headers policies add to the answer, whatever it is (an error too): set
    # on it by the edge; `Vary` values are added to the answer's own.
    answer_headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def route(self) -> Route:
        return self.match.route

    @property
    def http(self) -> GatewayRequest:
        """The HTTP request (a kind that serves only HTTP asks for it)."""
        assert self.request is not None, "a WebSocket handshake has no HTTP request"
        return self.request

    def remaining(self) -> float:
        """Seconds left of the route's deadline."""
        return max(0.0, self.deadline - asyncio.get_running_loop().time())


def open_call(
    envelope: Envelope,
    match: Match,
    scope: Mapping[str, Any],
    *,
    request: GatewayRequest | None = None,
    receive: Receive | None = None,
    send: Send | None = None,
) -> RouteCall:
    """The call of a matched request: the one place the route's deadline is
    fixed (its `timeout`, from now: after the body was read, before any
    policy ran)."""
    return RouteCall(
        envelope=envelope,
        match=match,
        scope=scope,
        request=request,
        receive=receive,
        send=send,
        deadline=asyncio.get_running_loop().time() + match.route.timeout,
    )
