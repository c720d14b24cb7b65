"""Python hooks: the gateway's only public Python API.

A hook is an ``async def`` that the routes file names as
``"module.path:attribute"`` (importable on ``PYTHONPATH``), for one of three
stages::

    hooks:                                   # every route (they run first)
      request: [acme.tenancy:require_tenant]
    routes:
      - name: dashboard
        hooks:                               # this route's, after the global ones
          backend: [acme.signing:sign]
          response: [acme.shape:add_totals]

Each stage's hook receives one object, and returns nothing:

``request`` hooks get a :class:`RequestContext`, after auth and rate limits and
before any upstream is called (every route kind; a WebSocket's handshake)::

    async def require_tenant(ctx: RequestContext) -> None:
        tenant = ctx.request.claims.get("tenant")
        if not tenant:
            ctx.reject(403, "no tenant in the token")
        ctx.set_header("X-Tenant", str(tenant))

``backend`` hooks get a :class:`BackendCall`, before each backend call of an
aggregate route (once per backend, not per retry)::

    async def sign(call: BackendCall) -> None:
        call.set_header("X-Signature", hmac_of(call.method, call.path, call.query_string))

``response`` hooks get a :class:`ResponseContext`, on aggregate routes after
the merge and before the cache and the client (not on streamed answers)::

    async def add_totals(response: ResponseContext) -> None:
        orders = response.body.get("orders") or []
        response.body["total"] = sum(o["amount"] for o in orders)

Everything a hook may read is read-only (mappings are views or copies; the
request is frozen); what it may change, it changes through a method or the
one mutable attribute (``ResponseContext.body`` and ``.status``). The three
contexts name header changes alike: ``set_header(name, value)``,
``remove_header(name)``, and ``headers_set`` / ``headers_removed`` for what
the hooks so far did (a request hook's headers go to every upstream call, a
backend hook's to its call, a response hook's to the client). Setting a
header replaces every value it had. The headers that frame a message or
describe one hop (``Host``, ``Content-Length``, ``Transfer-Encoding``,
``Connection``, ``Upgrade``, ``TE``, ``Trailer``, ``Keep-Alive`` and
``Proxy-*``) are the gateway's alone: setting or removing one raises
``ValueError`` at the call (the request then fails with ``500``, as for any
hook that raises). A hook that
raises fails the request with ``500`` (the traceback goes to the log, never
to the client); ``reject`` answers the status it names instead. Hooks run on
the gateway's event loop: never block it (no ``time.sleep``, no synchronous
I/O), and they count against the route's deadline.

Everything a hook needs is imported from this module: the three contexts,
``Request``, ``BackendOutcome`` and ``Rejection``. ``gateway.hooks.testing``
builds these objects without a server, for hook authors' own tests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NoReturn
from urllib.parse import parse_qsl, quote, urlencode

from gateway.routes.reader import HEADER_NAME

__all__ = [
    "FRAMING_HEADERS",
    "BackendCall",
    "BackendHook",
    "BackendOutcome",
    "Rejection",
    "Request",
    "RequestContext",
    "RequestHook",
    "ResponseContext",
    "ResponseHook",
]


class Rejection(Exception):
    """Raised by ``RequestContext.reject``: the client gets ``status`` with
    ``detail`` as problem+json. A hook may also raise it itself."""

    def __init__(self, status: int, detail: str) -> None:
        if not 400 <= status <= 599:
            raise ValueError(f"a rejection's status must be 4xx or 5xx, not {status}")
        super().__init__(status, detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """The client's request, as the gateway understood it. Header names are
    lower case; ``query`` holds each parameter's first value (``query_string``
    all of it, as sent, without credentials taken from it)."""

    method: str
    path: str
    route: str
    params: Mapping[str, str]  # the route path's parameters
    query: Mapping[str, str]
    query_string: str
    headers: Mapping[str, str]  # the client's headers (repeated ones joined with ", ")
    identity: str | None  # who auth said is asking; None on a public route
    claims: Mapping[str, Any]  # a JWT's verified claims; empty otherwise
    request_id: str


class _HeaderEdits:
    """What a context's hooks set and removed, named the same in every
    context: ``set_header``, ``remove_header``, ``headers_set``,
    ``headers_removed``."""

    __slots__ = ("_removed", "_set")

    def __init__(self) -> None:
        # Made when a hook first changes a header: most contexts never are.
        self._set: dict[str, str] | None = None
        self._removed: set[str] | None = None

    def _record_set(self, key: str, value: str) -> None:
        if self._removed is not None:
            self._removed.discard(key)
        if self._set is None:
            self._set = {}
        self._set[key] = value

    def _record_removed(self, key: str) -> None:
        if self._set is not None:
            self._set.pop(key, None)
        if self._removed is None:
            self._removed = set()
        self._removed.add(key)

    @property
    def headers_set(self) -> Mapping[str, str]:
        """The headers hooks have set so far (lower-case names, last value)."""
        return MappingProxyType(self._set if self._set is not None else {})

    @property
    def headers_removed(self) -> frozenset[str]:
        """The headers hooks have removed so far (lower-case names)."""
        return frozenset(self._removed) if self._removed is not None else frozenset()


class _Context(_HeaderEdits):
    """What every context has: the request (the gateway builds it when a
    hook first reads it: a hook that does not costs nothing)."""

    __slots__ = ("_make_request", "_request")

    def __init__(self, request: Request) -> None:
        super().__init__()
        self._request: Request | None = request
        self._make_request: Callable[[], Request] | None = None

    @property
    def request(self) -> Request:
        """The client's request, as the gateway understood it."""
        if self._request is None:
            assert self._make_request is not None
            self._request = self._make_request()
        return self._request


class RequestContext(_Context):
    """What a ``request`` hook gets: the request, and the headers every
    upstream call of this request will carry."""

    __slots__ = ()

    def set_header(self, name: str, value: str) -> None:
        """Send ``name: value`` with every upstream call (replacing every value
        the client sent and any the gateway would have sent). Framing and
        hop-by-hop headers raise ``ValueError``."""
        key = _header_name(name)
        _check_value(value)
        self._record_set(key, value)

    def remove_header(self, name: str) -> None:
        """Send no ``name`` header upstream (a forwarded client header, a
        static one, one an earlier hook set)."""
        self._record_removed(_header_name(name))

    # The same, under the names of the first release.
    set_upstream_header = set_header
    remove_upstream_header = remove_header
    upstream_headers_set = _HeaderEdits.headers_set
    upstream_headers_removed = _HeaderEdits.headers_removed

    def reject(self, status: int, detail: str) -> NoReturn:
        """Answer the client ``status`` (4xx or 5xx) with ``detail``; no
        upstream is called and no later hook runs."""
        raise Rejection(status, detail)


class BackendCall(_Context):
    """What a ``backend`` hook gets: one backend call of an aggregate route,
    as rendered, before it is sent. Its headers and query may change."""

    __slots__ = (
        "_changed",
        "_headers",
        "_query",
        "_wire_headers",
        "_wire_query",
        "backend",
        "method",
        "path",
    )

    def __init__(
        self,
        *,
        request: Request,
        backend: str,
        method: str,
        path: str,
        headers: Iterable[tuple[str, str]] = (),
        query: Iterable[tuple[str, str]] = (),
    ) -> None:
        super().__init__(request)
        self.backend = backend  # the backend's name (its `name`, `key` or upstream)
        self.method = method
        self.path = path  # percent-encoded, as sent (the upstream's base path included)
        self._headers: list[tuple[str, str]] | None = [(n.lower(), v) for n, v in headers]
        self._query: list[tuple[str, str]] | None = list(query)
        # The gateway hands the call over as it will be sent, and decodes it
        # only if a hook looks: a hook that reads nothing costs nothing.
        self._wire_headers: list[tuple[bytes, bytes]] = []
        self._wire_query = ""
        self._changed = False

    @property
    def headers(self) -> Mapping[str, str]:
        """All the call's headers as they stand (lower-case names; a copy)."""
        return dict(self._header_list())

    @property
    def query(self) -> Mapping[str, str]:
        """The query parameters as they stand (first values; a copy)."""
        out: dict[str, str] = {}
        for name, value in self._query_list():
            out.setdefault(name, value)
        return out

    @property
    def query_string(self) -> str:
        """The query as it will be sent, percent-encoded."""
        if self._query is None:
            return self._wire_query
        return urlencode(self._query, quote_via=quote)

    def set_header(self, name: str, value: str) -> None:
        """Send ``name: value`` with this call, replacing every value it had."""
        key = _header_name(name)
        _check_value(value)
        headers = self._header_list()
        headers[:] = [(n, v) for n, v in headers if n != key]
        headers.append((key, value))
        self._record_set(key, value)
        self._changed = True

    def remove_header(self, name: str) -> None:
        key = _header_name(name)
        headers = self._header_list()
        headers[:] = [(n, v) for n, v in headers if n != key]
        self._record_removed(key)
        self._changed = True

    def set_query(self, name: str, value: str) -> None:
        """Set one query parameter (replacing every value it had)."""
        query = self._query_list()
        query[:] = [(n, v) for n, v in query if n != name]
        query.append((name, value))
        self._changed = True

    def remove_query(self, name: str) -> None:
        query = self._query_list()
        query[:] = [(n, v) for n, v in query if n != name]
        self._changed = True

    def _header_list(self) -> list[tuple[str, str]]:
        if self._headers is None:
            self._headers = [
                (n.decode("latin-1"), v.decode("latin-1")) for n, v in self._wire_headers
            ]
        return self._headers

    def _query_list(self) -> list[tuple[str, str]]:
        if self._query is None:
            self._query = parse_qsl(self._wire_query, keep_blank_values=True)
        return self._query


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendOutcome:
    """How one backend's call ended."""

    name: str
    key: str | None
    required: bool
    ok: bool
    status: int | None  # the upstream's last status, if it answered
    error: str | None  # timeout, circuit_open, status, invalid, too_large or connection
    duration_ms: float


class ResponseContext(_Context):
    """What a ``response`` hook gets: the merged answer before it is cached
    and sent. ``body`` (the merged JSON as Python objects) and ``status`` may
    be replaced or changed in place; response headers are set with
    ``set_header``."""

    __slots__ = ("_body", "_outcomes", "_unread", "status")

    def __init__(
        self,
        *,
        request: Request,
        outcomes: Iterable[BackendOutcome] | Callable[[], tuple[BackendOutcome, ...]],
        body: Any,
        status: int = 200,
    ) -> None:
        super().__init__(request)
        self._body = body
        # The gateway passes the merged answer unread (a function that builds
        # its Python objects): a hook that never reads it costs nothing.
        self._unread: Callable[[], Any] | None = None
        self.status = status
        # built when first read (the gateway passes a function)
        self._outcomes = outcomes if callable(outcomes) else tuple(outcomes)

    @property
    def body(self) -> Any:
        """The merged JSON as Python objects: change it in place or replace it."""
        if self._unread is not None:
            self._body, self._unread = self._unread(), None
        return self._body

    @body.setter
    def body(self, value: Any) -> None:
        self._body, self._unread = value, None

    @property
    def outcomes(self) -> tuple[BackendOutcome, ...]:
        """Each backend's outcome, in the route's order."""
        if callable(self._outcomes):
            self._outcomes = self._outcomes()
        return self._outcomes

    @property
    def completed(self) -> bool:
        """Did every backend answer."""
        return all(o.ok for o in self.outcomes)

    # The first release's name for headers_set.
    headers = _HeaderEdits.headers_set

    def set_header(self, name: str, value: str) -> None:
        """Set a response header, replacing any value it had (the gateway's
        own, Content-Type and X-Gateway-Completed, and the framing headers
        cannot be set)."""
        key = _header_name(name)
        if key in _OWNED_RESPONSE:
            raise ValueError(f"the gateway sets {name!r} itself")
        _check_value(value)
        self._record_set(key, value)

    def remove_header(self, name: str) -> None:
        """Take back a header an earlier hook set."""
        self._record_removed(_header_name(name))

    def outcome(self, name: str) -> BackendOutcome:
        """The outcome of the backend called ``name``."""
        for outcome in self.outcomes:
            if outcome.name == name:
                return outcome
        raise KeyError(name)


type RequestHook = Callable[[RequestContext], Awaitable[None]]
type BackendHook = Callable[[BackendCall], Awaitable[None]]
type ResponseHook = Callable[[ResponseContext], Awaitable[None]]

_OWNED_RESPONSE = frozenset({"content-type", "x-gateway-completed"})


# Headers that frame a message or describe one hop: a second Host, a
# Content-Length beside the gateway's own or a Transfer-Encoding would let a
# hook desynchronise a pooled upstream connection (request smuggling).
FRAMING_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "upgrade",
        "te",
        "trailer",
        "keep-alive",
    }
)


def _header_name(name: str) -> str:
    if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
        raise ValueError(f"not a header name: {name!r}")
    key = name.lower()
    if key in FRAMING_HEADERS or key.startswith("proxy-"):
        raise ValueError(f"{name!r} frames the message or describes one hop: hooks cannot set it")
    return key


def _check_value(value: str) -> None:
    if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
        raise ValueError("a header value must be a string without CR, LF or NUL")
    value.encode("latin-1")  # what HTTP headers can carry
