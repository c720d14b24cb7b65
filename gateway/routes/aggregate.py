"""The `backends:` route kind (aggregate routes): each backend's upstream,
templates, shaping and name, the references between backends (no unknown
parameter, no cycle), and the route's `cache`."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import replace

from gateway.routes.hooks import STAGES
from gateway.routes.keys import (
    BOOL,
    DURATION,
    HEADERS,
    NAME,
    STRING,
    STRINGS,
    Key,
    ListOf,
    MapOf,
    Section,
    Value,
)
from gateway.routes.kinds import read_template, read_upstream_ref
from gateway.routes.mirror import MIRROR_KEY, read_mirror
from gateway.routes.model import Aggregate, Backend, CacheSpec, FieldRef, ParamRef, Template
from gateway.routes.reader import NAME as NAME_PATTERN
from gateway.routes.reader import Reader, did_you_mean
from gateway.routes.settings import read_forward_headers
from gateway.routes.source import Node
from gateway.routes.vocabulary import KindReader, RouteContext

__all__ = ["AGGREGATE", "BACKEND"]

BACKEND = Section(
    (
        Key(name="upstream", value=NAME, required=True, example="u"),
        Key(name="path", value=STRING, required=True, example="/x", wrong=["/x"]),
        Key(name="query", value=MapOf(STRING, "q")),
        Key(name="key", value=STRING, example="k"),
        Key(name="required", value=BOOL),
        Key(name="target", value=STRING, example="data"),
        Key(name="allow", value=STRINGS),
        Key(name="deny", value=STRINGS),
        Key(name="rename", value=MapOf(STRING, "a"), example={"a": "b"}),
        Key(name="name", value=NAME),
        Key(name="method", value=Value({"enum": ["GET", "POST"]}, "POST", "PUT")),
        Key(name="forward_headers", value=HEADERS),
    )
)
CACHE = Section((Key(name="ttl", value=DURATION, required=True),))
_KEY = re.compile(r"[A-Za-z0-9_\-]+")
_FIELD_PATH = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*")
_EMPTY = Template(parts=(), source="")


def _read(r: Reader, fields: Mapping[str, Node], ctx: RouteContext) -> Aggregate | None:
    backends = _read_backends(r, fields["backends"], ctx.where, ctx.upstreams, ctx.params)
    cache = None
    if "cache" in fields:
        cache = _read_cache(r, fields["cache"], f"{ctx.where}: cache")
        if ctx.methods is not None and "GET" not in ctx.methods:
            message = "caches GET responses; the route has no GET"
            r.error(fields["cache"], f"{ctx.where}: cache", message)
    stream = False
    if "stream" in fields:
        stream = bool(r.boolean(fields["stream"], f"{ctx.where}: stream"))
    mirror = read_mirror(r, fields, ctx)
    return Aggregate(backends=backends, cache=cache, stream=stream, mirror=mirror)


def _read_cache(r: Reader, node: Node, where: str) -> CacheSpec | None:
    fields = CACHE.fields(r, node, where)
    if not fields or "ttl" not in fields:
        return None
    ttl = r.duration(fields["ttl"], f"{where}.ttl")
    return CacheSpec(ttl=ttl) if ttl else None


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
    fields = BACKEND.fields(r, node, where)
    if fields is None or "upstream" not in fields or "path" not in fields:
        return None
    upstream = read_upstream_ref(r, fields["upstream"], f"{where}.upstream", upstreams)
    path = read_template(r, fields["path"], f"{where}.path", is_path=True)
    query: list[tuple[str, Template | None]] = []
    if "query" in fields:
        qnode = fields["query"]
        if isinstance(qnode.value, dict):
            query = [
                (k, read_template(r, v, f"{where}.query.{k}", is_path=False))
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
    if (name := text.get("name")) and not NAME_PATTERN.fullmatch(name):
        r.error(fields["name"], f"{where}.name", "may use letters, digits, '_', '.', ':' and '-'")
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
                    hint = did_you_mean(ref.name, params)
                    r.error(at, label, f"unknown route parameter {{{ref.name}}}{hint}")
                elif isinstance(ref, FieldRef) and (ref.key not in keys or ref.key == b.key):
                    what = "its own body"
                    if ref.key != b.key:
                        others = [k for k in keys if k != b.key]
                        what = f"no backend has key {ref.key!r}" + did_you_mean(ref.key, others)
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


AGGREGATE = KindReader(
    name="aggregate",
    keys=(
        Key(name="backends", value=ListOf(BACKEND, min_items=1), wrong=[]),
        Key(name="cache", value=CACHE),
        Key(name="stream", value=BOOL),
        MIRROR_KEY,
    ),
    methods=("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"),
    read=_read,
    hook_stages=STAGES,
)
