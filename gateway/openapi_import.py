"""Routes from an upstream's OpenAPI 3.0 or 3.1 document (SPEC 3.19):
`manage.py import_openapi FILE --upstream NAME [--prefix /api]`.

One proxy route per operation: its path (under `--prefix`), its method, its
summary, description and tags, and `validate` from what the operation
declares: path, query and header parameters (`params`, `query`,
`headers`) and a JSON request body (`body`, when the body is required and
every media type it accepts is JSON). Schemas become JSON Schema 2020-12:
OpenAPI 3.0's `nullable` and boolean `exclusiveMinimum`/`exclusiveMaximum`
are rewritten, references to `#/components/schemas/X` point at `$defs/X`.
The components a route needs are inlined into its schema (`$defs`), or,
with `schemas_file`, written once into that file and referenced from it.

What cannot be a route is left out and said (`skipped`): a path whose
parameter is part of a segment (`/files/{name}.json`), a parameter name the
routes file cannot hold, an operation whose path and method another
operation already serves. The upstream's URL is its first server's (as the
default of `${NAME_URL}`), the server's path prefixed to each proxy path.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Imported", "OpenApiImportError", "import_openapi"]

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SEGMENT = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@]*")
_PARAM = re.compile(r"\{([^{}/]+)\}")
_SCHEMA_REF = "#/components/schemas/"
_DEFS = "#/$defs/"
_DOLLAR = re.compile(r"\$(?=[${])")
_IGNORED_HEADERS = {"accept", "content-type", "authorization"}  # OpenAPI 3: ignored


@dataclass
class Imported:
    document: dict[str, Any]  # the routes file
    skipped: list[str] = field(default_factory=list)  # "GET /x: why"
    defs: dict[str, Any] = field(default_factory=dict)  # with schemas_file: its $defs


class OpenApiImportError(ValueError):
    """The document is not an OpenAPI 3.0/3.1 document we can read."""


def import_openapi(
    spec: Mapping[str, Any],
    upstream: str,
    *,
    prefix: str = "",
    schemas_file: str | None = None,
) -> Imported:
    version = str(spec.get("openapi", ""))
    if not version.startswith(("3.0", "3.1")):
        raise OpenApiImportError(
            f"not an OpenAPI 3.0 or 3.1 document (openapi: {version or 'missing'})"
        )
    legacy = version.startswith("3.0")
    paths = spec.get("paths")
    paths = {} if paths is None else paths
    components = spec.get("components")
    components = {} if components is None else components
    if not isinstance(paths, dict):
        raise OpenApiImportError("paths: expected a mapping of paths to operations")
    if not isinstance(components, dict) or not isinstance(components.get("schemas") or {}, dict):
        raise OpenApiImportError("components: expected a mapping (schemas: a mapping of names)")
    defs = {
        name: _convert(schema, legacy)
        for name, schema in (components.get("schemas") or {}).items()
        if isinstance(schema, dict | bool)
    }
    items = {path: _resolve(spec, item) for path, item in paths.items()}  # 3.1: $ref items
    ids = Counter(
        operation.get("operationId")
        for item in items.values()
        if isinstance(item, dict)
        for method in _METHODS
        if isinstance(operation := item.get(method), dict)
    )
    origin, base_path = _server(spec)
    prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
    result = Imported(document={}, defs=defs if schemas_file else {})
    routes: list[dict[str, Any]] = []
    names: set[str] = set()
    served: set[tuple[str, str]] = set()
    for path, item in items.items():
        if not isinstance(item, dict) or not isinstance(path, str):
            continue
        shared = item.get("parameters") or []
        shared = shared if isinstance(shared, list) else []
        for method in _METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            where = f"{method.upper()} {path}"
            try:
                route = _route(
                    spec, path, method, operation, shared, upstream, prefix, base_path, legacy
                )
            except _Skip as why:
                result.skipped.append(f"{where}: {why}")
                continue
            except (AttributeError, TypeError, ValueError) as exc:  # a malformed operation
                result.skipped.append(f"{where}: not a valid operation ({exc})")
                continue
            shape = (method, re.sub(r"\{[^}]+\}", "{}", route["path"]))
            if shape in served:
                result.skipped.append(f"{where}: another operation serves this path and method")
                continue
            served.add(shape)
            unique = ids[operation.get("operationId")] == 1
            route["name"] = _unique(_name(operation if unique else {}, method, path), names)
            validate = route.get("validate") or {}
            for part, schema in list(validate.items()):
                validate[part] = _bundle(schema, defs, schemas_file)
            routes.append(_escaped(_ordered(route)))
    if schemas_file:  # only what the routes' schemas reach (not the answers' schemas)
        result.defs = _closure(
            (schema for route in routes for schema in (route.get("validate") or {}).values()),
            defs,
        )
    result.document = {
        "version": 1,
        "upstreams": {
            upstream: {"url": f"${{{_env_name(upstream)}:-{origin}}}"},
        },
        "routes": routes,
    }
    return result


class _Skip(Exception):
    pass


def _server(spec: Mapping[str, Any]) -> tuple[str, str]:
    """(scheme://host[:port] of the first absolute server URL, its path)."""
    for server in spec.get("servers") or []:
        if not isinstance(server, dict):
            continue
        url = str(server.get("url", ""))
        for name in _PARAM.findall(url):
            url = url.replace("{" + name + "}", _variable(server, name))
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")
    return "http://127.0.0.1:8080", ""


def _variable(server: Mapping[str, Any], name: str) -> str:
    variables = server.get("variables") or {}
    value = variables.get(name, {}).get("default", "") if isinstance(variables, dict) else ""
    return str(value)


def _route(
    spec: Mapping[str, Any],
    path: str,
    method: str,
    operation: Mapping[str, Any],
    shared: list[Any],
    upstream: str,
    prefix: str,
    base_path: str,
    legacy: bool,
) -> dict[str, Any]:
    segments = []
    for segment in path.strip("/").split("/"):
        whole = re.fullmatch(r"\{([^{}]+)\}", segment)
        if whole:
            name = whole.group(1)
            if not _IDENT.fullmatch(name):
                raise _Skip(f"the parameter name {name!r} cannot be a routes-file parameter")
            segments.append(segment)
        elif "{" in segment or "}" in segment:
            raise _Skip(f"the segment {segment!r} holds a parameter beside other text")
        elif not _SEGMENT.fullmatch(segment):
            raise _Skip(f"the segment {segment!r} needs percent-encoding")
        else:
            segments.append(segment)
    gateway_path = prefix + "/" + "/".join(segments) if segments != [""] else prefix or "/"
    route: dict[str, Any] = {
        "path": gateway_path,
        "methods": [method.upper()],
    }
    for key in ("summary", "description"):
        if isinstance(operation.get(key), str) and operation[key].strip():
            route[key] = operation[key].strip()
    tags = [t for t in operation.get("tags") or [] if isinstance(t, str)]
    if tags:
        route["tags"] = tags
    route["proxy"] = {"upstream": upstream, "path": base_path + "/" + "/".join(segments)}
    own = operation.get("parameters") or []
    validate = _parameters(spec, [*shared, *(own if isinstance(own, list) else [])], legacy)
    body = _body(spec, operation.get("requestBody"), legacy)
    if body is not None:
        validate["body"] = body
    if validate:
        route["validate"] = validate
    return route


def _parameters(spec: Mapping[str, Any], listed: list[Any], legacy: bool) -> dict[str, Any]:
    by_place: dict[str, dict[str, Any]] = {}
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for raw in listed:  # an operation's own parameters override the path item's
        parameter = _resolve(spec, raw)
        if not isinstance(parameter, dict) or "name" not in parameter:
            continue
        seen[(str(parameter.get("in")), str(parameter["name"]))] = parameter
    for (place, name), parameter in seen.items():
        target = {"path": "params", "query": "query", "header": "headers"}.get(place)
        if target is None or (place == "header" and name.lower() in _IGNORED_HEADERS):
            continue
        if place == "header":
            name = name.lower()
        schema = parameter.get("schema")
        converted = _convert(schema, legacy) if isinstance(schema, dict) else {}
        entry = by_place.setdefault(target, {"type": "object", "properties": {}})
        entry["properties"][name] = converted
        if parameter.get("required") or place == "path":
            entry.setdefault("required", []).append(name)
    return by_place


def _body(spec: Mapping[str, Any], raw: Any, legacy: bool) -> Any:
    """The JSON body's schema, or None when the body is not checked."""
    body = _resolve(spec, raw)
    if not isinstance(body, dict) or not body.get("required"):
        return None  # an optional body: a request without one must still pass
    content = body.get("content") or {}
    if not content or not all(_is_json(kind) for kind in content):
        return None  # forms, files: not checked
    for media in content.values():
        if isinstance(media, dict) and isinstance(media.get("schema"), dict | bool):
            return _convert(media["schema"], legacy)
    return None


def _is_json(kind: str) -> bool:
    kind = kind.split(";")[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def _resolve(spec: Mapping[str, Any], raw: Any, depth: int = 0) -> Any:
    """A `$ref` to the document's components (parameters, requestBodies), followed."""
    if not isinstance(raw, dict) or "$ref" not in raw or depth > 10:
        return raw
    ref = raw["$ref"]
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return None
    node: Any = spec
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node.get(part) if isinstance(node, dict) else None
    return _resolve(spec, node, depth + 1)


# --- schemas -------------------------------------------------------------------------
def _convert(schema: Any, legacy: bool) -> Any:
    """An OpenAPI schema as JSON Schema 2020-12 (a copy)."""
    return _converted(copy.deepcopy(schema), legacy)


def _converted(node: Any, legacy: bool) -> Any:
    if isinstance(node, list):
        return [_converted(item, legacy) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _converted(value, legacy) for key, value in node.items()}
    ref = out.get("$ref")
    if isinstance(ref, str) and ref.startswith(_SCHEMA_REF):
        out["$ref"] = "#/$defs/" + ref[len(_SCHEMA_REF) :]
    if legacy:
        if out.pop("nullable", False) is True:
            kind = out.get("type")
            if isinstance(kind, str):
                out["type"] = [kind, "null"]
                if "enum" in out and None not in out["enum"]:
                    out["enum"] = [*out["enum"], None]
            elif "type" not in out:
                out = {"anyOf": [out, {"type": "null"}]}
        for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if isinstance(out.get(bound), bool) and out.pop(bound) and limit in out:
                out[bound] = out.pop(limit)
        if "example" in out:
            out["examples"] = [out.pop("example")]
    return out


def _refs(node: Any) -> Iterator[str]:
    """The component names `node`'s references reach: `#/$defs/X`, inlined
    or in the schemas file (`FILE#/$defs/X`)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and _DEFS in ref:
            yield ref.split(_DEFS, 1)[1]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _closure(schemas: Iterable[Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """The components `schemas` reach, and those they reach in turn."""
    needed: dict[str, Any] = {}
    pending = [name for schema in schemas for name in _refs(schema)]
    while pending:
        name = pending.pop()
        if name in needed or name not in defs:
            continue
        needed[name] = defs[name]
        pending.extend(_refs(defs[name]))
    return dict(sorted(needed.items()))


def _bundle(schema: Any, defs: Mapping[str, Any], schemas_file: str | None) -> Any:
    """`schema` with the components it reaches: inlined as `$defs`, or its
    references pointed at `schemas_file`."""
    if schemas_file is not None:
        return _pointed(schema, schemas_file)
    needed = _closure([schema], defs)
    if not needed:
        return schema
    if isinstance(schema, dict) and "$defs" not in schema:
        return {**schema, "$defs": needed}
    return {"allOf": [schema], "$defs": needed}


def _pointed(node: Any, schemas_file: str) -> Any:
    if isinstance(node, list):
        return [_pointed(item, schemas_file) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _pointed(value, schemas_file) for key, value in node.items()}
    ref = out.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        out["$ref"] = schemas_file + ref
    return out


# --- names ---------------------------------------------------------------------------
def _name(operation: Mapping[str, Any], method: str, path: str) -> str:
    raw = operation.get("operationId")
    if not isinstance(raw, str) or not raw.strip():
        raw = f"{method}-{path}"
    slug = re.sub(r"[^A-Za-z0-9_.:\-]+", "-", raw.strip())
    slug = re.sub(r"-{2,}", "-", slug).strip("-_.:")
    return (slug or method)[:90]


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}-{n}", n + 1
    taken.add(candidate)
    return candidate


def _env_name(upstream: str) -> str:
    return re.sub(r"[^A-Z0-9_]", "_", upstream.upper()) + "_URL"


def _escaped(node: Any) -> Any:
    """The document's text as the routes file reads it back: there `${...}` is
    an environment variable and `$$` one `$`, so a `$` before `{` or `$` is
    doubled (`$ref`, a pattern's `^a$` need nothing)."""
    if isinstance(node, str):
        return _DOLLAR.sub("$$", node)
    if isinstance(node, list):
        return [_escaped(item) for item in node]
    if isinstance(node, dict):
        return {_escaped(key): _escaped(value) for key, value in node.items()}
    return node


def _ordered(route: dict[str, Any]) -> dict[str, Any]:
    order = ("name", "path", "methods", "summary", "description", "tags", "validate", "proxy")
    return {key: route[key] for key in order if key in route}
