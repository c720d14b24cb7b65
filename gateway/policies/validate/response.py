"""Response validation (SPEC 3.16 `validate.response`): a route's 2xx JSON
answers checked against a schema before they reach the client.

Aggregate and static routes: the body as it is answered. Proxy routes: JSON
answers up to `max_response_size`, read whole first; larger ones, and
answers the upstream encoded (gzip...), pass unchecked. `mode: report`
passes the answer unchanged, counts it in `gateway_response_invalid_total`
and keeps the last violations for the admin listener (`GET /validation`)
and the dashboard: contract drift is seen before clients notice it.
`mode: enforce` answers 502 `response-invalid` instead.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from django.http.response import HttpResponseBase
from prometheus_client import Counter

from gateway.errors import ResponseInvalid
from gateway.policies.validate.request import MAX_ERRORS, OFF_LOOP, collect, is_json
from gateway.policies.validate.schemas import CompiledSchema
from gateway.responses import RelayedResponse

__all__ = [
    "RECENT",
    "RESPONSE_INVALID",
    "TOTALS",
    "ResponseCheck",
    "Violation",
    "checked",
    "validation_document",
]

RESPONSE_INVALID = Counter(
    "gateway_response_invalid_total",
    "2xx JSON answers that did not match their route's validate.response schema.",
    ["route"],
)
KEPT = 50


@dataclass(frozen=True, slots=True)
class Violation:
    at: float
    route: str
    request_id: str
    status: int
    mode: str
    errors: list[dict[str, str]]


RECENT: deque[Violation] = deque(maxlen=KEPT)  # newest last
TOTALS: dict[str, int] = {}


@dataclass(frozen=True, slots=True)
class ResponseCheck:
    schema: CompiledSchema
    enforce: bool
    max_size: int


async def checked(
    check: ResponseCheck, route: str, request_id: str, response: HttpResponseBase
) -> HttpResponseBase:
    """`response`, or (enforce mode, a violation) ResponseInvalid raised."""
    if not 200 <= response.status_code < 300:
        return response
    if isinstance(response, RelayedResponse):
        return await _relayed(check, route, request_id, response)
    if response.streaming or not is_json(response.get("Content-Type", "")):
        return response
    if response.get("Content-Encoding"):
        return response
    await _judged(check, route, request_id, response.status_code, bytes(response.content))  # type: ignore[attr-defined]
    return response


async def _relayed(
    check: ResponseCheck, route: str, request_id: str, response: RelayedResponse
) -> HttpResponseBase:
    named = {name.lower(): value for name, value in response.raw_headers}
    kind = named.get(b"content-type", b"").decode("latin-1")
    if not is_json(kind) or named.get(b"content-encoding", b"identity") != b"identity":
        return response
    declared = named.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > check.max_size:
        return response
    parts: list[bytes] = []
    size = 0
    source = aiter(response.relay)
    async for part in source:
        parts.append(part)
        size += len(part)
        if size > check.max_size:  # too large to check: the rest follows as it comes
            response.relay = _replay(parts, source)
            return response
    await _judged(check, route, request_id, response.status_code, b"".join(parts))
    response.relay = _replay(parts, None)
    return response


async def _replay(
    parts: list[bytes], rest: AsyncIterator[bytes] | AsyncIterable[bytes] | None
) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    if rest is not None:
        async for part in rest:
            yield part


async def _judged(
    check: ResponseCheck, route: str, request_id: str, status: int, body: bytes
) -> None:
    """Record a violation (and, enforcing, raise ResponseInvalid). Large
    answers are parsed and checked on a worker thread."""
    if len(body) > OFF_LOOP:
        errors = await asyncio.to_thread(_errors, check.schema, body)
    else:
        errors = _errors(check.schema, body)
    if not errors:
        return
    mode = "enforce" if check.enforce else "report"
    RECENT.append(Violation(time.time(), route, request_id, status, mode, errors[:MAX_ERRORS]))
    TOTALS[route] = TOTALS.get(route, 0) + 1
    RESPONSE_INVALID.labels(route).inc()
    if check.enforce:  # nothing of the upstream's answer goes to the client
        raise ResponseInvalid(
            "the upstream's answer does not match the route's response schema "
            "(the violations: GET /validation on the admin listener)"
        )


def _errors(schema: CompiledSchema, body: bytes) -> list[dict[str, str]]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return [{"location": "response", "pointer": "", "message": f"not valid JSON: {exc}"}]
    errors: list[dict[str, str]] = []
    collect(schema, document, "response", errors)
    return errors


def validation_document(limit: int | None = None) -> dict[str, Any]:
    """`GET /validation` and the dashboard's panel: counts per route and the
    last violations, newest first (the first `limit`)."""
    newest = list(reversed(RECENT))[:limit]
    return {
        "totals": dict(sorted(TOTALS.items())),
        "violations": [
            {
                "at": _when(v.at),
                "route": v.route,
                "status": v.status,
                "mode": v.mode,
                "request_id": v.request_id,
                "errors": v.errors,
            }
            for v in newest
        ],
        "columns": ["at", "route", "status", "mode", "problems", "request"],
        "rows": [
            [
                _when(v.at),
                v.route,
                v.status,
                v.mode,
                "; ".join(f"{e['pointer'] or '(root)'}: {e['message']}" for e in v.errors[:3]),
                v.request_id,
            ]
            for v in newest
        ],
    }


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
