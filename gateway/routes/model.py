"""The routes file as frozen, typed values.

Nothing here is mutable and no raw YAML reaches these types: the readers turn
the parsed document into them once, at load time, and the request path only
reads them. Durations are float seconds, sizes are int bytes, header names
are lower-case.

The core of the file is typed here. What registered kinds and policies read
(gateway/routes/vocabulary.py) is kept as their own frozen values: a route's
kind in `Route.kind` (Aggregate, Proxy, WebSocket below), its policies'
values in `Route.options`, the defaults `settings:` gives them in
`GatewaySettings.options`, and the top-level sections they own (`auth:`) in
`RouteTable.sections`; each policy reads its own back through its `Option`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Literal

__all__ = [
    "Aggregate",
    "Backend",
    "CacheSpec",
    "CircuitBreaker",
    "FieldRef",
    "GatewaySettings",
    "Grpc",
    "HealthCheck",
    "MirrorSpec",
    "Outlier",
    "ParamRef",
    "PathSegment",
    "Proxy",
    "QueryRef",
    "Retries",
    "Route",
    "RouteTable",
    "Target",
    "Template",
    "Upstream",
    "UpstreamTls",
    "WebSocket",
    "native_grpc",
]


_NO_OPTIONS: Mapping[str, Any] = MappingProxyType({})


# --- templates ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ParamRef:
    """`{name}`: a parameter of the route path."""

    name: str


@dataclass(frozen=True, slots=True)
class QueryRef:
    """`{query.NAME}`: the client's query parameter NAME (empty when absent)."""

    name: str


@dataclass(frozen=True, slots=True)
class FieldRef:
    """`{KEY.a.b}`: field a.b of the body of the backend placed under KEY."""

    key: str
    path: tuple[str, ...]


type TemplatePart = str | ParamRef | QueryRef | FieldRef


@dataclass(frozen=True, slots=True)
class Template:
    """A string with `{...}` holes, split into literal text and references."""

    parts: tuple[TemplatePart, ...]
    source: str

    @property
    def refs(self) -> tuple[ParamRef | QueryRef | FieldRef, ...]:
        return tuple(p for p in self.parts if not isinstance(p, str))


@dataclass(frozen=True, slots=True)
class PathSegment:
    """One segment of a route path: a literal, `{x}` or (last only) `{x:path}`."""

    literal: str | None = None
    param: str | None = None
    is_path: bool = False


# --- upstream and cache settings ---------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class CacheSpec:
    ttl: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Retries:
    attempts: int = 1
    backoff: float = 0.05


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitBreaker:
    failures: int
    cooldown: float


# --- upstreams, backends, routes -------------------------------------------------
@dataclass(frozen=True, slots=True)
class UpstreamTls:
    """An upstream's `tls:` (file paths absolute)."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    server_name: str | None = None
    verify: bool = True

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(f for f in (self.ca, self.cert, self.key) if f is not None)


@dataclass(frozen=True, slots=True)
class Target:
    """One instance of an upstream (`targets:`, or the one `url:` names)."""

    name: str  # default: host:port
    host: str
    port: int
    weight: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Outlier:
    """Passive ejection (SPEC 3.17), Envoy's consecutive-failure detector."""

    consecutive_failures: int = 5
    base_ejection: float = 30.0
    max_ejection: float = 300.0
    max_ejected_percent: int = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthCheck:
    """Active probes: GET `path` on every target each `interval`."""

    path: str = "/healthz"
    interval: float = 5.0
    timeout: float = 1.0
    unhealthy: int = 3
    healthy: int = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Upstream:
    name: str
    scheme: Literal["http", "https"]
    host: str
    port: int
    base_path: str  # "" or "/prefix" (no trailing slash)
    timeout: float = 5.0
    headers: tuple[tuple[str, str], ...] = ()
    retries: Retries = field(default_factory=Retries)
    circuit_breaker: CircuitBreaker | None = None
    max_connections: int = 100
    max_streams: int = 50  # long-lived connections (event streams, WebSockets); default half
    max_header_size: int = 64 * 1024  # a larger response header block fails the call
    tls: UpstreamTls | None = None  # https:// only: CA, client certificate, SNI (upstream/tls.py)
    # Several instances (SPEC 3.17); `host` and `port` are the first one's.
    # Empty: the one `url:` names.
    targets: tuple[Target, ...] = ()
    balance: Literal["least_request", "round_robin"] = "least_request"
    outlier: Outlier = field(default_factory=Outlier)
    health_check: HealthCheck | None = None
    sticky: str | None = None  # "client", "ip" or "header:<lower-case name>"
    override_header: str | None = None  # lower-case

    @property
    def instances(self) -> tuple[Target, ...]:
        if self.targets:
            return self.targets
        return (Target(f"{self.host}:{self.port}", self.host, self.port),)

    @property
    def connection_key(self) -> tuple[object, ...]:
        """What its HTTP client depends on (kept across reloads while equal)."""
        return (self.name, self.scheme, self.max_connections, self.max_header_size, self.tls)


@dataclass(frozen=True, slots=True)
class MirrorSpec:
    """A route's `mirror:` (SPEC 3.17): its calls repeated against another upstream."""

    upstream: str
    percent: float = 100.0
    methods: frozenset[str] = frozenset({"GET", "HEAD"})
    max_in_flight: int = 32
    max_body_size: int = 1024 * 1024
    compare: bool = False
    ignore: tuple[tuple[str, ...], ...] = ()  # dot paths, split


@dataclass(frozen=True, slots=True, kw_only=True)
class Backend:
    name: str
    upstream: str
    path: Template
    query: tuple[tuple[str, Template], ...] = ()
    key: str | None = None
    required: bool = True
    target: tuple[str, ...] = ()
    allow: tuple[tuple[str, ...], ...] = ()
    deny: tuple[tuple[str, ...], ...] = ()
    rename: tuple[tuple[tuple[str, ...], str], ...] = ()
    method: Literal["GET", "POST"] = "GET"
    forward_headers: tuple[str, ...] = ()

    @property
    def depends_on(self) -> frozenset[str]:
        """Keys of the backends whose bodies this one's path or query read."""
        templates = (self.path, *(t for _, t in self.query))
        return frozenset(r.key for t in templates for r in t.refs if isinstance(r, FieldRef))


@dataclass(frozen=True, slots=True, kw_only=True)
class Aggregate:
    """`backends:`: called concurrently, shaped, merged into one JSON answer."""

    backends: tuple[Backend, ...]
    cache: CacheSpec | None = None
    stream: bool = False  # clients may ask for one record per backend (SSE, NDJSON)
    mirror: MirrorSpec | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Proxy:
    """`proxy:`: passed through to one upstream, streamed both ways."""

    upstream: str
    path: Template
    idle_timeout: float | None = None  # silence allowed between body chunks; None: upstream's
    mirror: MirrorSpec | None = None


def native_grpc(scope: Mapping[str, Any]) -> bool:
    """A gRPC request over HTTP/2 (not gRPC-Web): its body streams, its
    answer ends with HTTP/2 trailers."""
    if scope.get("http_version") != "2":
        return False
    for name, value in scope["headers"]:
        if name == b"content-type":
            media = bytes(value).split(b";", 1)[0].strip().lower()
            return media.startswith(b"application/grpc") and not media.startswith(
                b"application/grpc-web"
            )
    return False


@dataclass(frozen=True, slots=True, kw_only=True)
class Grpc:
    """`grpc:`: the calls of one gRPC service relayed to an upstream over
    HTTP/2 (gRPC-Web translated), messages and trailers unchanged.

    The class attributes are what the edge and the shared policies read of a
    route's kind (each with a default for kinds that do not say): the body
    handed over as it comes (`streams_request`, gateway/edge/handler.py), no
    compression (gRPC compresses its own messages), and the headers CORS
    always allows and exposes for gRPC-Web."""

    upstream: str
    service: str  # package.Service

    streams_request: ClassVar[Callable[[Mapping[str, Any]], bool]] = staticmethod(native_grpc)
    compressible: ClassVar[bool] = False
    cors_allow: ClassVar[tuple[str, ...]] = (
        "Content-Type",
        "X-Grpc-Web",
        "X-User-Agent",
        "Grpc-Timeout",
    )
    cors_expose: ClassVar[tuple[str, ...]] = (
        "Grpc-Status",
        "Grpc-Message",
        "Grpc-Status-Details-Bin",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSocket:
    """`websocket:`: a client WebSocket relayed to one upstream WebSocket."""

    upstream: str
    path: Template
    subprotocols: tuple[str, ...] | None = None  # None: the client's offers as they are
    max_message_size: int = 1024 * 1024
    idle_timeout: float = 300.0  # no message either way this long: both sides closed


@dataclass(frozen=True, slots=True)
class Hook:
    """A Python hook, resolved when the file loaded (gateway/routes/hooks.py)."""

    name: str  # "module.path:attribute", as written
    func: Callable[[Any], Awaitable[None]]
    line: int


@dataclass(frozen=True, slots=True)
class Hooks:
    """Hooks by stage, in the order they run (gateway.hooks says what each gets)."""

    request: tuple[Hook, ...] = ()
    backend: tuple[Hook, ...] = ()
    response: tuple[Hook, ...] = ()

    def __add__(self, later: Hooks) -> Hooks:
        return Hooks(
            self.request + later.request,
            self.backend + later.backend,
            self.response + later.response,
        )


NO_HOOKS = Hooks()


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    name: str
    path: str
    segments: tuple[PathSegment, ...]
    methods: frozenset[str]
    timeout: float
    max_body_size: int
    # What the route does: its kind's frozen value (Aggregate, Proxy, WebSocket
    # or a registered kind's own), read and served by that kind.
    kind: object
    kind_name: str  # "aggregate", "proxy", "websocket"
    # The policies it uses, by policy name: each reads its own (Option.of).
    options: Mapping[str, Any] = _NO_OPTIONS
    hooks: Hooks = NO_HOOKS  # the route's own; the table's global ones run first
    # documentation only (OpenAPI): what the route is for
    summary: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()
    line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewaySettings:
    timeout: float = 10.0
    max_body_size: int = 1024 * 1024
    max_response_size: int = 10 * 1024 * 1024
    forward_headers: tuple[str, ...] = ("accept-language",)
    max_streams_per_client: int = 20  # long-lived connections one client may hold
    options: Mapping[str, Any] = _NO_OPTIONS  # policies' defaults for every route


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteTable:
    """A whole, valid routes file."""

    source: str
    settings: GatewaySettings
    upstreams: Mapping[str, Upstream]  # read-only views (MappingProxyType)
    routes: tuple[Route, ...]
    # Top-level sections owned by policies (`auth:`): key -> name -> entry.
    sections: Mapping[str, Mapping[str, Any]] = _NO_OPTIONS
    hooks: Hooks = NO_HOOKS  # global: every route's, before its own
    # Values `${NAME}` took from the environment: never shown (GET /config).
    secrets: frozenset[str] = frozenset()
    # Other files it was read from (schemas a `$ref` named): reloaded when they change.
    files: frozenset[str] = frozenset()
    files_digest: bytes = b""  # their bytes' digest, taken as they were read
