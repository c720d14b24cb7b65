"""Build the `routes:` section: routes, their backends or proxy, and every
route-local rule (parameters, references between backends, cycles)."""

from __future__ import annotations

import re
from collections.abc import Collection

from gateway.routes.model import (
    Backend,
    CacheSpec,
    FieldRef,
    GatewaySettings,
    ParamRef,
    Proxy,
    RateLimit,
    Route,
    Template,
)
from gateway.routes.reader import HEADER_NAME, Reader
from gateway.routes.sections import NAME, read_cors, read_forward_headers
from gateway.routes.source import Node
from gateway.routes.templates import parse_route_path, parse_template

__all__ = ["read_route"]

_ROUTE_KEYS = (
    "name",
    "path",
    "methods",
    "auth",
    "scopes",
    "rate_limit",
    "timeout",
    "max_body_size",
    "cache",
    "cors",
    "backends",
    "proxy",
)
_BACKEND_KEYS = (
    "upstream",
    "path",
    "query",
    "key",
    "required",
    "target",
    "allow",
    "deny",
    "rename",
    "name",
    "method",
    "forward_headers",
)
_ROUTE_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_PROXY_METHODS = (*_ROUTE_METHODS, "OPTIONS")
_KEY = re.compile(r"[A-Za-z0-9_\-]+")
_FIELD_PATH = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*")
_RESERVED = ("/healthz", "/readyz", "/metrics")
_EMPTY = Template(parts=(), source="")


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
            r.error(
                fields["name"], f"{where}: name", "may use letters, digits, '_', '.', ':' and '-'"
            )
        where = f"route {name!r}"
    path, segments, params = _read_path(r, fields, where)
    is_proxy = "proxy" in fields
    if is_proxy == ("backends" in fields):
        r.error(node, where, "needs exactly one of 'backends' or 'proxy'")
        return None
    methods = _read_methods(r, fields, where, _PROXY_METHODS if is_proxy else _ROUTE_METHODS)
    timeout = settings.timeout
    if "timeout" in fields:
        timeout = r.duration(fields["timeout"], f"{where}: timeout") or timeout
    max_body = settings.max_body_size
    if "max_body_size" in fields:
        max_body = r.size(fields["max_body_size"], f"{where}: max_body_size") or max_body
    auth = _read_auth(r, fields, where, providers)
    scopes: list[str] = []
    if "scopes" in fields:
        scopes = r.strings(fields["scopes"], f"{where}: scopes") or []
        if scopes and not auth:
            r.error(fields["scopes"], f"{where}: scopes", "scopes need 'auth' on the route")
    rate_limit = (
        _read_rate_limit(r, fields["rate_limit"], f"{where}: rate_limit")
        if "rate_limit" in fields
        else None
    )
    cors = read_cors(r, fields["cors"], f"{where}: cors") if "cors" in fields else settings.cors
    cache = None
    if "cache" in fields:
        cache = _read_cache(r, fields["cache"], f"{where}: cache")
        if is_proxy:
            r.error(
                fields["cache"], f"{where}: cache", "applies to aggregate (backends) routes only"
            )
        elif methods is not None and "GET" not in methods:
            r.error(
                fields["cache"], f"{where}: cache", "caches GET responses; the route has no GET"
            )
    backends: tuple[Backend, ...] = ()
    proxy = None
    if is_proxy:
        proxy = _read_proxy(r, fields["proxy"], where, upstreams, params)
    else:
        backends = _read_backends(r, fields["backends"], where, upstreams, params)
    if name is None or methods is None:
        return None
    # path "" marks an invalid path: the route still counts for duplicate names.
    return Route(
        name=name,
        path=path or "",
        segments=segments,
        methods=methods,
        timeout=timeout,
        max_body_size=max_body,
        backends=backends,
        proxy=proxy,
        auth=tuple(auth),
        scopes=frozenset(scopes),
        rate_limit=rate_limit,
        cache=cache,
        cors=cors,
        line=node.line,
    )


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
            r.error(fields["auth"], f"{where}: auth", f"unknown auth provider {provider!r}")
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


def _read_cache(r: Reader, node: Node, where: str) -> CacheSpec | None:
    fields = r.mapping(node, where, allowed=("ttl",), required=("ttl",))
    if not fields or "ttl" not in fields:
        return None
    ttl = r.duration(fields["ttl"], f"{where}.ttl")
    return CacheSpec(ttl=ttl) if ttl else None


def _template(r: Reader, node: Node, where: str, *, is_path: bool) -> Template | None:
    text = r.string(node, where, allow_empty=not is_path, coerce=not is_path)
    if text is None:
        return None
    template, problem = parse_template(text, is_path=is_path)
    if problem:
        r.error(node, where, problem)
    return template


def _read_proxy(
    r: Reader, node: Node, where: str, upstreams: Collection[str], params: frozenset[str] | None
) -> Proxy | None:
    where = f"{where}: proxy"
    fields = r.mapping(node, where, allowed=("upstream", "path"), required=("upstream", "path"))
    if fields is None or "upstream" not in fields or "path" not in fields:
        return None
    upstream = _read_upstream_ref(r, fields["upstream"], f"{where}.upstream", upstreams)
    template = _template(r, fields["path"], f"{where}.path", is_path=True)
    if template is not None and params is not None:
        for ref in template.refs:
            if isinstance(ref, FieldRef):
                r.error(fields["path"], f"{where}.path", "proxy paths cannot use backend fields")
            elif isinstance(ref, ParamRef) and ref.name not in params:
                r.error(fields["path"], f"{where}.path", f"unknown parameter {{{ref.name}}}")
    if upstream is None or template is None:
        return None
    return Proxy(upstream=upstream, path=template)


def _read_upstream_ref(r: Reader, node: Node, where: str, upstreams: Collection[str]) -> str | None:
    name = r.string(node, where)
    if name is not None and name not in upstreams:
        r.error(node, where, f"unknown upstream {name!r}")
        return None
    return name


def _read_backends(
    r: Reader, node: Node, where: str, upstreams: Collection[str], params: frozenset[str] | None
) -> tuple[Backend, ...]:
    items = r.listing(node, f"{where}: backends")
    if items is None:
        return ()
    if not items:
        r.error(node, f"{where}: backends", "must list at least one backend")
        return ()
    read = [
        _read_backend(r, item, f"{where}: backends[{i}]", upstreams) for i, item in enumerate(items)
    ]
    kept = [(b, n) for b, n in zip(read, items, strict=True) if b is not None]
    backends = _name_backends([b for b, _ in kept], [n for _, n in kept], r, where)
    if params is not None and backends:
        _check_references(r, backends, [n for _, n in kept], where, params)
    return backends


def _read_backend(r: Reader, node: Node, where: str, upstreams: Collection[str]) -> Backend | None:
    fields = r.mapping(node, where, allowed=_BACKEND_KEYS, required=("upstream", "path"))
    if fields is None or "upstream" not in fields or "path" not in fields:
        return None
    upstream = _read_upstream_ref(r, fields["upstream"], f"{where}.upstream", upstreams)
    path = _template(r, fields["path"], f"{where}.path", is_path=True)
    query: list[tuple[str, Template | None]] = []
    if "query" in fields:
        qnode = fields["query"]
        if isinstance(qnode.value, dict):
            query = [
                (k, _template(r, v, f"{where}.query.{k}", is_path=False))
                for k, v in qnode.value.items()
            ]
        else:
            r.error(qnode, f"{where}.query", f"expected a mapping, got {qnode.kind}")
    key = r.string(fields["key"], f"{where}.key") if "key" in fields else None
    if key is not None and (not _KEY.fullmatch(key) or key == "query"):
        r.error(fields["key"], f"{where}.key", f"invalid key {key!r}")
    text = {
        k: r.string(fields[k], f"{where}.{k}") for k in ("name", "target", "method") if k in fields
    }
    method = (text.get("method") or "GET").upper()
    if method not in ("GET", "POST"):
        r.error(fields["method"], f"{where}.method", "aggregate backends use GET or POST")
    target = _field_path(r, fields.get("target"), f"{where}.target", text.get("target"))
    allow = _field_paths(r, fields.get("allow"), f"{where}.allow")
    deny = _field_paths(r, fields.get("deny"), f"{where}.deny")
    rename = _read_rename(r, fields.get("rename"), f"{where}.rename")
    forward: tuple[str, ...] | None = ()
    if "forward_headers" in fields:
        forward = read_forward_headers(r, fields["forward_headers"], f"{where}.forward_headers")
    required = True
    if "required" in fields:
        required = r.boolean(fields["required"], f"{where}.required") is not False
    # Invalid parts were reported; placeholders let the route-wide checks still run.
    return Backend(
        name=text.get("name") or "",
        upstream=upstream or str(fields["upstream"].value),
        path=path or _EMPTY,
        query=tuple((k, t) for k, t in query if t is not None),
        key=key,
        required=required,
        target=target or (),
        allow=allow or (),
        deny=deny or (),
        rename=rename or (),
        method="POST" if method == "POST" else "GET",
        forward_headers=forward or (),
    )


def _field_path(
    r: Reader, node: Node | None, where: str, text: str | None
) -> tuple[str, ...] | None:
    if node is None:
        return ()
    if text is None:
        return None
    if not _FIELD_PATH.fullmatch(text):
        r.error(node, where, f"invalid field path {text!r} (use dots: data.items)")
        return None
    return tuple(text.split("."))


def _field_paths(r: Reader, node: Node | None, where: str) -> tuple[tuple[str, ...], ...] | None:
    if node is None:
        return ()
    names = r.strings(node, where)
    if names is None:
        return None
    paths = [_field_path(r, node, where, name) for name in names]
    return None if None in paths else tuple(p for p in paths if p)


def _read_rename(
    r: Reader, node: Node | None, where: str
) -> tuple[tuple[tuple[str, ...], str], ...] | None:
    if node is None:
        return ()
    mapping = r.string_map(node, where)
    if mapping is None:
        return None
    out = []
    for source, new_name in mapping.items():
        path = _field_path(r, node, f"{where}.{source}", source)
        if not _KEY.fullmatch(new_name):
            r.error(
                node, f"{where}.{source}", f"the new name {new_name!r} must be a plain field name"
            )
            return None
        if path is None:
            return None
        out.append((path, new_name))
    return tuple(out)


def _name_backends(
    backends: list[Backend], nodes: list[Node], r: Reader, where: str
) -> tuple[Backend, ...]:
    from dataclasses import replace

    explicit: dict[str, int] = {}
    keys: dict[str, int] = {}
    for i, b in enumerate(backends):
        if b.name:
            if b.name in explicit:
                r.error(
                    nodes[i], f"{where}: backends[{i}].name", f"duplicate backend name {b.name!r}"
                )
            explicit[b.name] = i
        if b.key:
            if b.key in keys:
                r.error(
                    nodes[i],
                    f"{where}: backends[{i}].key",
                    f"key {b.key!r} is used by backends[{keys[b.key]}] too",
                )
            keys[b.key] = i
    taken = set(explicit)
    named = []
    for b in backends:
        name = b.name
        if not name:
            base = b.key or b.upstream
            name, n = base, 1
            while name in taken:
                n += 1
                name = f"{base}#{n}"
        taken.add(name)
        named.append(replace(b, name=name))
    return tuple(named)


def _check_references(
    r: Reader, backends: tuple[Backend, ...], nodes: list[Node], where: str, params: frozenset[str]
) -> None:
    keys = {b.key: i for i, b in enumerate(backends) if b.key}
    fields_ok = True
    for i, b in enumerate(backends):
        raw = nodes[i].value
        node = raw if isinstance(raw, dict) else {}
        placed = [("path", b.path), *((f"query.{k}", t) for k, t in b.query)]
        for field, template in placed:
            at: Node | int = nodes[i]
            if field == "path" and "path" in node:
                at = node["path"]
            elif "query" in node:
                at = node["query"]
            label = f"{where}: backends[{i}].{field}"
            for ref in template.refs:
                if isinstance(ref, ParamRef) and ref.name not in params:
                    r.error(at, label, f"unknown route parameter {{{ref.name}}}")
                elif isinstance(ref, FieldRef) and (ref.key not in keys or ref.key == b.key):
                    what = "its own body" if ref.key == b.key else f"no backend has key {ref.key!r}"
                    r.error(at, label, f"{{{ref.key}.{'.'.join(ref.path)}}}: {what}")
                    fields_ok = False
    if fields_ok and (cycle := _find_cycle(backends, keys)):
        names = " -> ".join(backends[i].name for i in cycle)
        r.error(
            nodes[cycle[0]],
            f"{where}: backends",
            f"backends reference each other in a cycle: {names}",
        )


def _find_cycle(backends: tuple[Backend, ...], keys: dict[str, int]) -> list[int] | None:
    state: dict[int, int] = {}  # 1 = visiting, 2 = done

    def visit(i: int, trail: list[int]) -> list[int] | None:
        if state.get(i) == 2:
            return None
        if state.get(i) == 1:
            return [*trail[trail.index(i) :], i]
        state[i] = 1
        for key in sorted(backends[i].depends_on):
            if found := visit(keys[key], [*trail, i]):
                return found
        state[i] = 2
        return None

    for i in range(len(backends)):
        if found := visit(i, []):
            return found
    return None
