"""Request validation (SPEC 3.16 `validate:`): the path parameters, the query,
the headers and the JSON body, each against its compiled schema.

Query, path and header values are strings: a parameter given twice is an
array, one given once is an array of one where the schema asks for an
array, and a value (or an array's item) is read as an integer, a number or
a boolean where the schema's `type` asks for one (`?limit=10` satisfies
`type: integer`; `?limit=ten` stays a string, and the schema says why it
is wrong). A body must be JSON (`application/json` or `+json`: otherwise
415) and well formed (400); GET, HEAD, DELETE and OPTIONS requests without
one are not asked for one. Every location is checked; the first 20
problems are the answer's `errors`, each with its location, the JSON
Pointer of the offending value, and what is wrong.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Iterable
from itertools import islice
from typing import Any
from urllib.parse import parse_qsl

import orjson

from gateway.envelope import RouteCall
from gateway.errors import RequestInvalid, UnsupportedMediaType
from gateway.policies.validate.schemas import Coercion, CompiledSchema

__all__ = [
    "MAX_ERRORS",
    "check_request",
    "collect",
    "is_json",
    "json_pointer",
    "read_parameters",
]

MAX_ERRORS = 20
MAX_MESSAGE = 300  # characters of one message: it may quote the value, which may be huge
# Bodies past this are parsed and checked on a worker thread (orjson and
# jsonschema-rs release the GIL): a 10 MiB body must not stall the loop.
OFF_LOOP = 256 * 1024
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_BOOLEANS = {"true": True, "false": False}


def read_parameters(pairs: Iterable[tuple[str, str]], schema: CompiledSchema) -> dict[str, Any]:
    """Name -> value as the schema reads it (see the module's docstring)."""
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    out: dict[str, Any] = {}
    for name, values in grouped.items():
        coercion = schema.coercion(name)
        if coercion.array or len(values) > 1:
            out[name] = [_scalar(v, coercion) for v in values]
        else:
            out[name] = _scalar(values[0], coercion)
    return out


def _scalar(text: str, coercion: Coercion) -> Any:
    kind = coercion.scalar
    if kind == "integer" and _INTEGER.fullmatch(text):
        return int(text)
    if kind == "number" and _NUMBER.fullmatch(text):
        number = float(text)
        if math.isfinite(number):
            return int(text) if _INTEGER.fullmatch(text) else number
    if kind == "boolean" and text in _BOOLEANS:
        return _BOOLEANS[text]
    return text


def json_pointer(path: Iterable[str | int]) -> str:
    """RFC 6901: "" for the root, "/items/0/sku" below it."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def collect(
    schema: CompiledSchema, instance: Any, location: str, errors: list[dict[str, str]]
) -> None:
    """Append `instance`'s problems under `schema` to `errors` (up to MAX_ERRORS)."""
    try:
        if len(errors) >= MAX_ERRORS or schema.validator.is_valid(instance):
            return  # the common case: a yes or no is cheaper than the list of errors
        found = [
            {
                "location": location,
                "pointer": json_pointer(error.instance_path),
                "message": _short(error.message),
            }
            for error in islice(schema.validator.iter_errors(instance), MAX_ERRORS - len(errors))
        ]
    except ValueError:  # the validator's recursion limit: a hostile nesting depth
        found = [{"location": location, "pointer": "", "message": "nested too deeply to check"}]
    errors += found


def _short(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


def is_json(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


async def check_request(
    call: RouteCall,
    *,
    params: CompiledSchema | None,
    query: CompiledSchema | None,
    headers: CompiledSchema | None,
    body: CompiledSchema | None,
) -> None:
    """Raise RequestInvalid (400) or UnsupportedMediaType (415) when the request fails."""
    errors: list[dict[str, str]] = []
    if params is not None:
        collect(params, read_parameters(call.match.params.items(), params), "params", errors)
    request = call.request
    if query is not None:
        # The query as the edge left it (credentials taken out), parsed as
        # Django would, without building a QueryDict (5x the cost).
        raw = call.scope.get("query_string", b"").decode("utf-8", "replace")
        pairs = parse_qsl(raw, keep_blank_values=True)
        collect(query, read_parameters(pairs, query), "query", errors)
    if headers is not None:
        named = _headers(call.scope.get("headers", ()), headers)
        collect(headers, read_parameters(named, headers), "headers", errors)
    if body is not None and request is not None and _has_body(call):
        if not is_json(request.META.get("CONTENT_TYPE", "")):
            raise UnsupportedMediaType("the request body must be JSON (application/json)")
        data = request.body
        if len(data) > OFF_LOOP:
            errors += await asyncio.to_thread(_body_errors, body, data, MAX_ERRORS - len(errors))
        else:
            errors += _body_errors(body, data, MAX_ERRORS - len(errors))
    if errors:
        count = "1 problem" if len(errors) == 1 else f"{len(errors)} problems"
        raise RequestInvalid(f"the request does not match its schema ({count})", errors)


def _body_errors(schema: CompiledSchema, data: bytes, room: int) -> list[dict[str, str]]:
    """The body's problems (at most `room`); RequestInvalid if it is not JSON."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise RequestInvalid(
            "the request body is not valid JSON",
            [{"location": "body", "pointer": "", "message": f"not valid JSON: {exc}"}],
        ) from None
    errors: list[dict[str, str]] = []
    if room > 0:
        collect(schema, document, "body", errors)
    return errors[:room]


def _has_body(call: RouteCall) -> bool:
    """A body is checked on every request that has one, and required of every
    method but GET, HEAD, DELETE and OPTIONS (a route serving GET and POST
    checks the POST's body; its GETs have none)."""
    request = call.http
    if call.envelope.body_size or request.META.get("CONTENT_TYPE"):
        return True
    return request.method not in ("GET", "HEAD", "DELETE", "OPTIONS")


def _headers(
    raw: Iterable[tuple[bytes, bytes]], schema: CompiledSchema
) -> Iterable[tuple[str, str]]:
    """Lower-cased names; a header sent on several lines is one value joined by ", "
    (RFC 9110 5.3), unless the schema reads it as an array."""
    grouped: dict[str, list[str]] = {}
    for name, value in raw:
        grouped.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    for key, values in grouped.items():
        if schema.coercion(key).array:
            yield from ((key, v) for v in values)
        else:
            yield key, ", ".join(values)
