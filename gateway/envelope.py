"""The envelope: everything the gateway knows about one request, typed.

The ASGI handler builds it once, before the body is read (gateway/edge/context.py):
the Gateway in use when the request arrived, what the router matched, the
route's policy, the CORS policy that applies, and who is asking. The body's
size (or the reason it was refused) is added as it is read; auth adds the
identity; the route's handler adds what each backend did. The middleware, the
view, the handlers and the access log all read this object; nothing travels
in the ASGI scope, and nothing matches the route twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from django.core.handlers.asgi import ASGIRequest

from gateway.router import Match

if TYPE_CHECKING:
    from gateway.assembly import Gateway
    from gateway.errors import GatewayError
    from gateway.hooks import Request as HookRequest
    from gateway.observe.trace import TraceContext
    from gateway.pipeline.aggregate.budget import Hold
    from gateway.pipeline.hooks import UpstreamEdits
    from gateway.pipeline.relay import RelayLog
    from gateway.policies.cors import RouteCors
    from gateway.policies.route import RoutePolicy
    from gateway.router import BadPath, NoMatch
    from gateway.routes.model import Route

__all__ = ["BackendLog", "Envelope", "GatewayRequest", "HookLog"]

_NONE: Mapping[str, str] = MappingProxyType({})
_NO_CLAIMS: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class HookLog:
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


@dataclass(slots=True, eq=False, kw_only=True)
class Envelope:
    # --- what the handler found, before reading the body
    gateway: Gateway | None  # the routes in use when the request arrived (None: none loaded)
    found: Match | NoMatch | BadPath | None  # None when no routes are loaded
    policy: RoutePolicy | None = None  # the matched route's auth, rate limit and CORS
    cors: RouteCors | None = None  # the CORS that applies (a preflight: its method's route's)
    preflight: bool = False  # a CORS preflight (OPTIONS with Origin and a requested method)
    request_id: str
    client: str  # the client address, for logs and rate limits
    forwarded_for: str  # the X-Forwarded-For value sent to backends
    forwarded_proto: str
    forwarded_host: str
    trace: TraceContext | None = None  # W3C trace context: continued or started here
    query: str = ""  # the query string as the client sent it (logged with credentials masked)
    query_credentials: Mapping[str, str] = _NONE  # provider -> credential from its query_param
    # --- the body, as it was read
    body_size: int = 0
    refused: GatewayError | None = None  # by the edge (too many query fields; a body: 413, 408)
    # --- who is asking, once auth has said
    identity: str | None = None
    provider: str | None = None  # the auth provider that vouched for the identity
    identity_headers: tuple[tuple[bytes, bytes], ...] = ()  # set by auth: sent to backends
    claims: Mapping[str, Any] = _NO_CLAIMS  # a JWT's verified claims (for hooks)
    # --- what request hooks decided (None: no request hook ran)
    upstream_edits: UpstreamEdits | None = None
    hook_request: HookRequest | None = None  # what the request hooks were shown
    deadline: float | None = None  # loop time the route must answer by, once hooks ran
    # --- what the route did
    completed: bool | None = None  # aggregate routes: did every backend answer
    backends: list[BackendLog] = field(default_factory=list)
    memory: Hold | None = None  # aggregate routes: this request's share of MEMORY_BUDGET
    websocket: RelayLog | None = None  # websocket routes: the relayed pair, once it ended
    hooks: list[HookLog] = field(default_factory=list)
    cut: str | None = None  # the answer was cut off: send_timeout, idle_timeout, upstream_failed
    live: bool = False  # counted in flight on the dashboard (observe/live.py) until logged

    @property
    def route(self) -> Route | None:
        return self.found.route if isinstance(self.found, Match) else None

    @property
    def route_name(self) -> str | None:
        return self.found.route.name if isinstance(self.found, Match) else None

    @property
    def identity_key(self) -> str | None:
        """The identity qualified by its provider, for rate-limit and cache keys:
        API key id `alice` and JWT `sub: alice` of another provider never meet.
        Provider names cannot hold "/", so the first one separates them."""
        return None if self.identity is None else f"{self.provider}/{self.identity}"


class GatewayRequest(ASGIRequest):
    """Django's ASGI request, with the gateway's envelope (set by the handler)."""

    envelope: Envelope
