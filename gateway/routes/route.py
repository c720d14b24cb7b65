"""One entry of `routes:`: what every route has (name, path, methods, deadline,
body limit, auth, scopes, rate limit, CORS, hooks), and exactly one kind, read by
that kind's module (KINDS: aggregate.py, proxy.py, websocket.py)."""

from __future__ import annotations

from collections.abc import Collection

from gateway.routes.aggregate import AGGREGATE
from gateway.routes.hooks import STAGES, read_hooks
from gateway.routes.kinds import KindReader, RouteContext
from gateway.routes.model import NO_HOOKS, GatewaySettings, RateLimit, Route
from gateway.routes.proxy import PROXY
from gateway.routes.reader import HEADER_NAME, NAME, Reader, did_you_mean
from gateway.routes.settings import read_cors
from gateway.routes.source import Node
from gateway.routes.templates import parse_route_path
from gateway.routes.websocket import WEBSOCKET

__all__ = ["KINDS", "read_route"]

# The route kinds, each read by its own module. A new kind: a module with a
# KindReader, added here (and its builder in gateway/pipeline).
KINDS: tuple[KindReader, ...] = (AGGREGATE, PROXY, WEBSOCKET)
_COMMON_KEYS = (
    "name",
    "path",
    "methods",
    "auth",
    "scopes",
    "rate_limit",
    "timeout",
    "max_body_size",
    "cors",
    "hooks",
    "summary",
    "description",
    "tags",
)
_ROUTE_KEYS = (*_COMMON_KEYS, *(k.key for k in KINDS), *(o for k in KINDS for o in k.only_keys))
_RESERVED = ("/healthz", "/readyz", "/metrics")


def read_route(
    r: Reader,
    index: int,
    node: Node,
    settings: GatewaySettings,
    upstreams: Collection[str],
    providers: Collection[str],
) -> Route | None:
    """One entry of `routes:`; None (with problems recorded) when it is unusable."""
    where = f"routes[{index}]"
    fields = r.mapping(node, where, allowed=_ROUTE_KEYS, required=("name", "path"))
    if fields is None:
        return None
    name = r.string(fields["name"], f"{where}: name") if "name" in fields else None
    if name is not None:
        if not NAME.fullmatch(name):
            message = "may use letters, digits, '_', '.', ':' and '-'"
            r.error(fields["name"], f"{where}: name", message)
        where = f"route {name!r}"
    kind = _which_kind(r, node, fields, where)
    if kind is None:
        return None
    path, segments, params = _read_path(r, fields, where)
    methods = _read_methods(r, fields, where, kind.methods)
    timeout = settings.timeout
    if "timeout" in fields:
        timeout = r.duration(fields["timeout"], f"{where}: timeout") or timeout
    max_body = settings.max_body_size
    if "max_body_size" in fields:
        max_body = r.size(fields["max_body_size"], f"{where}: max_body_size") or max_body
    auth, scopes = _read_access(r, fields, where, providers)
    rate_limit = None
    if "rate_limit" in fields:
        rate_limit = _read_rate_limit(r, fields["rate_limit"], f"{where}: rate_limit")
    cors = read_cors(r, fields["cors"], f"{where}: cors") if "cors" in fields else settings.cors
    route_kind = kind.read(r, fields, RouteContext(where, upstreams, params, methods))
    summary = r.string(fields["summary"], f"{where}: summary") if "summary" in fields else None
    description = None
    if "description" in fields:
        description = r.string(fields["description"], f"{where}: description")
    tags = tuple(r.strings(fields["tags"], f"{where}: tags") or ()) if "tags" in fields else ()
    hooks = NO_HOOKS
    if "hooks" in fields:
        stages = STAGES if kind is AGGREGATE else ("request",)
        hooks = read_hooks(r, fields["hooks"], f"{where}: hooks", stages)
    if name is None or methods is None or route_kind is None:
        return None
    # path "" marks an invalid path: the route still counts for duplicate names.
    return Route(
        name=name,
        path=path or "",
        segments=segments,
        methods=methods,
        timeout=timeout,
        max_body_size=max_body,
        kind=route_kind,
        auth=auth,
        scopes=scopes,
        rate_limit=rate_limit,
        cors=cors,
        hooks=hooks,
        summary=summary,
        description=description,
        tags=tags,
        line=node.line,
    )


def _read_access(
    r: Reader, fields: dict[str, Node], where: str, providers: Collection[str]
) -> tuple[tuple[str, ...], frozenset[str]]:
    """Who may call the route: its auth providers (any one) and scopes (all)."""
    auth = _read_auth(r, fields, where, providers)
    scopes: list[str] = []
    if "scopes" in fields:
        scopes = r.strings(fields["scopes"], f"{where}: scopes") or []
        if scopes and not auth:
            r.error(fields["scopes"], f"{where}: scopes", "scopes need 'auth' on the route")
    return tuple(auth), frozenset(scopes)


def _which_kind(r: Reader, node: Node, fields: dict[str, Node], where: str) -> KindReader | None:
    """Exactly one kind key; keys of other kinds are errors."""
    present = [k for k in KINDS if k.key in fields]
    if len(present) != 1:
        names = [repr(k.key) for k in KINDS]
        r.error(node, where, f"needs exactly one of {', '.join(names[:-1])} or {names[-1]}")
        return None
    kind = present[0]
    for other in KINDS:
        for key in other.only_keys:
            if key in fields and key not in kind.only_keys:
                message = f"applies to {other.name} ({other.key}) routes only"
                r.error(fields[key], f"{where}: {key}", message)
    return kind


def _read_path(
    r: Reader, fields: dict[str, Node], where: str
) -> tuple[str | None, tuple, frozenset[str] | None]:  # type: ignore[type-arg]
    if "path" not in fields:
        return None, (), None
    path = r.string(fields["path"], f"{where}: path")
    if path is None:
        return None, (), None
    segments, problem = parse_route_path(path)
    if problem:
        r.error(fields["path"], f"{where}: path", problem)
        return None, (), None
    first = segments[0].literal if segments else None
    if path in _RESERVED or first == "_gateway":
        r.error(fields["path"], f"{where}: path", f"{path!r} is reserved for the gateway itself")
        return None, (), None
    return path, segments, frozenset(s.param for s in segments if s.param)


def _read_methods(
    r: Reader, fields: dict[str, Node], where: str, allowed: tuple[str, ...]
) -> frozenset[str] | None:
    if "methods" not in fields:
        return frozenset({"GET", "HEAD"})
    names = r.strings(fields["methods"], f"{where}: methods")
    if names is None:
        return None
    methods = {m.upper() for m in names}
    if bad := sorted(methods - set(allowed)):
        r.error(fields["methods"], f"{where}: methods", f"unsupported method {bad[0]!r}")
        return None
    if not methods:
        r.error(fields["methods"], f"{where}: methods", "must not be empty")
        return None
    if "GET" in methods:
        methods.add("HEAD")
    return frozenset(methods)


def _read_auth(
    r: Reader, fields: dict[str, Node], where: str, providers: Collection[str]
) -> list[str]:
    if "auth" not in fields:
        return []
    names = r.strings(fields["auth"], f"{where}: auth", single_ok=True) or []
    for provider in names:
        if provider not in providers:
            hint = did_you_mean(provider, providers)
            r.error(fields["auth"], f"{where}: auth", f"unknown auth provider {provider!r}{hint}")
    return names


def _read_rate_limit(r: Reader, node: Node, where: str) -> RateLimit | None:
    fields = r.mapping(
        node, where, allowed=("limit", "window", "burst", "key"), required=("limit", "window")
    )
    if not fields or "limit" not in fields or "window" not in fields:
        return None
    limit = r.integer(fields["limit"], f"{where}.limit")
    window = r.duration(fields["window"], f"{where}.window")
    burst = r.integer(fields["burst"], f"{where}.burst") if "burst" in fields else limit
    key = "client"
    if "key" in fields and (text := r.string(fields["key"], f"{where}.key")):
        kind, _, header = text.partition(":")
        if text in ("client", "ip", "global"):
            key = text
        elif kind == "header" and HEADER_NAME.fullmatch(header):
            key = f"header:{header.lower()}"
        else:
            r.error(
                fields["key"], f"{where}.key", f"{text!r}: use client, ip, global or header:NAME"
            )
    if limit is None or window is None or burst is None:
        return None
    return RateLimit(limit=limit, window=window, burst=burst, key=key)
