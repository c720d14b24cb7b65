"""Response compression (SPEC 3.16 `compress:`): on for every route unless
`settings.compress: null` or the route's `compress: null`.

    compress:                          # the built-in default, field by field
      algorithms: [zstd, br, gzip]     # preference among equal q-values
      min_size: 1KiB                   # smaller bodies pass as they are
      types: [application/json, application/*+json, application/x-ndjson,
              application/javascript, application/xml, text/*]

An answer is compressed when the client's `Accept-Encoding` accepts one of
`algorithms` (negotiate.py), its type matches, its body is at least
`min_size` (or its length is unknown), it is not encoded already, it may
have a body (not HEAD, 1xx, 204, 206, 304) and no `Cache-Control:
no-transform` forbids it. Then `Content-Encoding` is set, `Content-Length`
goes (the server frames the answer), a strong `ETag` turns weak;
`Vary: Accept-Encoding` is on every answer whose encoding depended on the
header. Streamed answers (proxy bodies, SSE, NDJSON, progressive
aggregation) are encoded chunk by chunk and flushed per chunk. The stage is
the outermost around the kind: a cached aggregate answer is stored once,
as it was made, and encoded for each client.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass

from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.utils.cache import patch_vary_headers

from gateway.envelope import RouteCall
from gateway.policies.compress.encoders import ALGORITHMS, encode, stream_encoder
from gateway.policies.compress.negotiate import choose, type_matches
from gateway.responses import RelayedResponse
from gateway.routes.keys import SIZE, Key, ListOf, Section, Value
from gateway.routes.model import Route
from gateway.routes.openapi import Description
from gateway.routes.reader import Reader
from gateway.routes.source import Node
from gateway.routes.vocabulary import Option, RouteContext
from gateway.stack import Answer, BuildContext, Policy, RouteHandler, RouteStage

__all__ = ["OPTION", "POLICY", "Compression"]

DEFAULT_TYPES = (
    "application/json",
    "application/*+json",
    "application/x-ndjson",
    "application/javascript",
    "application/xml",
    "text/*",
)
# Bodies past this are encoded on a worker thread (the codecs release the
# GIL): a 10 MiB answer must not stall every other request on the loop.
OFF_LOOP = 256 * 1024
_NO_BODY = frozenset({204, 206, 304})


@dataclass(frozen=True, slots=True)
class Compression:
    algorithms: tuple[str, ...] = ALGORITHMS
    min_size: int = 1024
    types: tuple[str, ...] = DEFAULT_TYPES


_TYPE = Value(
    {"type": "string", "pattern": r"^[A-Za-z0-9*!#$&^_.+-]+/[A-Za-z0-9*!#$&^_.+-]+$"},
    "text/*",
    "json",
)
SECTION = Section(
    (
        Key(
            name="algorithms",
            value=ListOf(Value({"enum": list(ALGORITHMS)}, "gzip", "deflate")),
            example=["zstd", "gzip"],
        ),
        Key(name="min_size", value=SIZE, example="2KiB"),
        Key(name="types", value=ListOf(_TYPE), example=["application/json", "text/*"]),
    )
)


def _read(r: Reader, fields: Mapping[str, Node], ctx: RouteContext) -> Compression | None:
    where = ctx.at("compress")
    found = SECTION.fields(r, fields["compress"], where)
    if found is None:
        return None
    default = Compression()
    algorithms, min_size, types = default.algorithms, default.min_size, default.types
    if "algorithms" in found:
        named = r.strings(found["algorithms"], f"{where}.algorithms") or []
        unknown = [a for a in named if a not in ALGORITHMS]
        if unknown:
            r.error(
                found["algorithms"],
                f"{where}.algorithms",
                f"{unknown[0]!r} is not one of {', '.join(ALGORITHMS)}",
            )
        elif not named:
            r.error(
                found["algorithms"], f"{where}.algorithms", "name at least one (or compress: null)"
            )
        algorithms = tuple(dict.fromkeys(named))
    if "min_size" in found:
        size = r.size(found["min_size"], f"{where}.min_size")
        min_size = size if size is not None else min_size
    if "types" in found:
        listed = r.strings(found["types"], f"{where}.types") or []
        for text in listed:
            if "/" not in text:
                r.error(
                    found["types"], f"{where}.types", f"{text!r} is not a media type (type/subtype)"
                )
        types = tuple(t.strip().lower() for t in listed)
    return Compression(algorithms, min_size, types)


OPTION = Option[Compression](
    name="compress",
    keys=(Key(name="compress", value=SECTION, nullable=True),),
    read=_read,
    in_settings=True,
    builtin=Compression(),
)


# --- the stage ---------------------------------------------------------------------
def compress_stage(route: Route, context: BuildContext) -> RouteStage | None:
    rule = OPTION.of(route)
    if rule is None or not getattr(route.kind, "compressible", True):  # grpc: its own
        return None

    def stage(inner: RouteHandler) -> RouteHandler:
        async def handler(call: RouteCall) -> Answer:
            answer = await inner(call)
            if answer is None or call.request is None or call.request.method == "HEAD":
                return answer
            return await _compressed(rule, call, answer)

        return handler

    return stage


async def _compressed(
    rule: Compression, call: RouteCall, answer: HttpResponseBase
) -> HttpResponseBase:
    status = answer.status_code
    if status < 200 or status in _NO_BODY:
        return answer
    if isinstance(answer, RelayedResponse):
        return _relayed(rule, call, answer)
    if answer.streaming or answer.has_header("Content-Encoding"):
        return answer
    if not type_matches(answer.get("Content-Type", ""), rule.types) or _no_transform(
        answer.get("Cache-Control", "")
    ):
        return answer
    body = answer.content  # type: ignore[attr-defined]
    if len(body) < rule.min_size:
        return answer  # never compressed: it does not vary
    patch_vary_headers(answer, ("Accept-Encoding",))
    algorithm = choose(_accept_encoding(call), rule.algorithms)
    if algorithm is None:
        return answer
    if len(body) > OFF_LOOP:
        encoded = await asyncio.to_thread(encode, algorithm, body)
    else:
        encoded = encode(algorithm, body)
    response: HttpResponse = answer  # type: ignore[assignment]
    response.content = encoded
    response["Content-Encoding"] = algorithm
    # SPEC 3.16 and nginx alike: the length changed, so Content-Length goes
    # (the server frames the answer itself).
    del response["Content-Length"]
    if (etag := response.get("ETag")) is not None:
        response["ETag"] = _weak(etag)
    return response


def _relayed(rule: Compression, call: RouteCall, answer: RelayedResponse) -> RelayedResponse:
    named = {name.lower(): value for name, value in answer.raw_headers}
    if b"content-encoding" in named or answer.has_header("Content-Encoding"):
        return answer  # the upstream encoded it: it passes as it came
    kind = named.get(b"content-type", b"").decode("latin-1") or answer.get("Content-Type", "")
    if not type_matches(kind, rule.types):
        return answer
    if _no_transform(named.get(b"cache-control", b"").decode("latin-1")):
        return answer
    length = named.get(b"content-length")
    if length is not None and length.isdigit() and int(length) < rule.min_size:
        return answer  # never compressed: it does not vary
    patch_vary_headers(answer, ("Accept-Encoding",))
    algorithm = choose(_accept_encoding(call), rule.algorithms)
    if algorithm is None:
        return answer
    headers = []
    for name, value in answer.raw_headers:
        lowered = name.lower()
        if lowered == b"content-length":
            continue
        if lowered == b"etag":
            value = _weak(value.decode("latin-1")).encode("latin-1")
        headers.append((name, value))
    headers.append((b"content-encoding", algorithm.encode()))
    answer.raw_headers = headers
    answer.relay = _encoded(algorithm, answer.relay)
    return answer


async def _encoded(algorithm: str, relay: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    encoder = stream_encoder(algorithm)
    try:
        async for part in relay:
            if part and (out := encoder.chunk(part)):
                yield out
        yield encoder.end()
    finally:
        encoder.close()


def _accept_encoding(call: RouteCall) -> str:
    values = [v for n, v in call.scope.get("headers", ()) if n == b"accept-encoding"]
    return b",".join(values).decode("latin-1")


def _no_transform(cache_control: str) -> bool:
    return "no-transform" in cache_control.lower()


def _weak(etag: str) -> str:
    return etag if etag.startswith("W/") else f"W/{etag}"


# --- descriptions ------------------------------------------------------------------
def describe(route: Route, description: Description) -> None:
    rule = OPTION.of(route)
    if rule is None:
        return
    description.ok_headers["Content-Encoding"] = {
        "description": f"{' / '.join(rule.algorithms)} when Accept-Encoding accepts one "
        f"and the body is at least {rule.min_size} bytes",
        "schema": {"type": "string", "enum": list(rule.algorithms)},
    }


def _summary(route: Route) -> str | None:
    rule = OPTION.of(route)
    if rule is None or rule == Compression():
        return None  # the default: every route has it
    return f"compress: {', '.join(rule.algorithms)} from {rule.min_size} B"


POLICY = Policy(
    name="compress", option=OPTION, stage=compress_stage, describe=describe, summary=_summary
)
