"""Rate limits (SPEC 3.5): `rate_limit: {limit, window, burst, key}` on a
route. One token per admitted request from the route's bucket for this
client (gateway/stores/limiter.py keeps the buckets); 429 with Retry-After
when it is empty. Every answer of a rate-limited route carries
RateLimit-Limit / -Remaining / -Reset. A WebSocket handshake takes one token.

When the shared store (Redis) is unreachable, RATE_LIMIT_FAILURE_MODE decides:
`open` admits the request (counted in gateway_ratelimit_store_errors_total,
without RateLimit-* headers, since nothing was counted), `closed` answers 503.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from gateway.envelope import Envelope, RouteCall
from gateway.errors import TooManyRequests, Unavailable
from gateway.observe import metrics
from gateway.routes.keys import DURATION, INT, Key, Section, Value
from gateway.routes.model import Route
from gateway.routes.openapi import Description
from gateway.routes.reader import HEADER_NAME, Reader
from gateway.routes.source import Node
from gateway.routes.vocabulary import Option, RouteContext
from gateway.stack import Answer, BuildContext, Policy, RouteHandler, RouteStage
from gateway.stores.limiter import StoreUnavailable

__all__ = [
    "OPTION",
    "POLICY",
    "RateLimit",
    "RouteLimit",
    "add_rate_headers",
    "build_route_limit",
    "take_token",
]


# --- the routes file -------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimit:
    limit: int
    window: float
    burst: int
    key: Literal["client", "ip", "global"] | str  # or "header:<lower-case name>"


SECTION = Section(
    (
        Key(name="limit", value=INT, required=True),
        Key(name="window", value=DURATION, required=True),
        Key(name="burst", value=INT),
        Key(
            name="key",
            value=Value(
                {"type": "string", "pattern": r"^(client|ip|global|header:.+)$"}, "ip", "who"
            ),
        ),
    )
)


def _read(r: Reader, fields: Mapping[str, Node], ctx: RouteContext) -> RateLimit | None:
    if "rate_limit" not in fields:
        return None
    where = ctx.at("rate_limit")
    found = SECTION.fields(r, fields["rate_limit"], where)
    if not found or "limit" not in found or "window" not in found:
        return None
    limit = r.integer(found["limit"], f"{where}.limit")
    window = r.duration(found["window"], f"{where}.window")
    burst = r.integer(found["burst"], f"{where}.burst") if "burst" in found else limit
    key = "client"
    if "key" in found and (text := r.string(found["key"], f"{where}.key")):
        kind, _, header = text.partition(":")
        if text in ("client", "ip", "global"):
            key = text
        elif kind == "header" and HEADER_NAME.fullmatch(header):
            key = f"header:{header.lower()}"
        else:
            message = f"{text!r}: use client, ip, global or header:NAME"
            r.error(found["key"], f"{where}.key", message)
    if limit is None or window is None or burst is None:
        return None
    return RateLimit(limit=limit, window=window, burst=burst, key=key)


OPTION = Option[RateLimit](
    name="rate_limit", keys=(Key(name="rate_limit", value=SECTION),), read=_read
)


# --- the stage -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RouteLimit:
    route: str
    limit: int
    capacity: int
    rate: float  # tokens per second
    key: str  # "client", "ip", "global" or "header:<name>"
    header: bytes | None  # the lower-case header name of "header:<name>"

    def bucket(self, envelope: Envelope, headers: list[tuple[bytes, bytes]]) -> str:
        """The bucket this request draws from (SPEC 3.5 `key`)."""
        if self.key == "global":
            who = "global"
        elif self.key == "client" and (identity := envelope.identity_key) is not None:
            who = "id:" + identity
        elif self.header is not None and (value := _first(headers, self.header)):
            who = "h:" + hashlib.sha256(value).hexdigest()[:32]
        else:
            who = "ip:" + envelope.client
        return f"{self.route}:{who}"


def build_route_limit(route: Route, spec: RateLimit) -> RouteLimit:
    header = spec.key.partition(":")[2] if spec.key.startswith("header:") else None
    return RouteLimit(
        route=route.name,
        limit=spec.limit,
        capacity=spec.burst,
        rate=spec.limit / spec.window,
        key=spec.key,
        header=header.encode() if header else None,
    )


async def take_token(
    limit: RouteLimit, context: BuildContext, call: RouteCall
) -> list[tuple[str, str]]:
    """Take this request's token: the RateLimit-* headers its answer carries
    (none when the store is down and `open`). Raises TooManyRequests (429,
    with the same headers) or Unavailable (503)."""
    runtime = context.runtime
    try:
        decision = await runtime.limiter.acquire(
            limit.bucket(call.envelope, call.scope["headers"]), limit.capacity, limit.rate
        )
    except StoreUnavailable:
        metrics.RATELIMIT_STORE_ERRORS.inc()
        if runtime.fail_closed:
            raise Unavailable("rate limiting is unavailable") from None
        return []
    rate_headers = [
        ("RateLimit-Limit", str(limit.limit)),
        ("RateLimit-Remaining", str(decision.remaining)),
        ("RateLimit-Reset", str(decision.reset_after)),
    ]
    if not decision.allowed:
        metrics.RATELIMIT_REJECTED.labels(limit.route).inc()
        refusal = TooManyRequests(decision.retry_after)
        refusal.headers.update(rate_headers)
        raise refusal
    return rate_headers


def rate_limit_stage(route: Route, context: BuildContext) -> RouteStage | None:
    spec = OPTION.of(route)
    if spec is None:
        return None
    limit = build_route_limit(route, spec)

    def stage(inner: RouteHandler) -> RouteHandler:
        async def handler(call: RouteCall) -> Answer:
            add_rate_headers(call, await take_token(limit, context, call))
            return await inner(call)

        return handler

    return stage


def add_rate_headers(call: RouteCall, headers: list[tuple[str, str]]) -> None:
    """The RateLimit-* headers of a limit this request passed. When two limits
    apply (a plan's and the route's), the answer carries one set: the limit
    with the fewest requests remaining, the one a client must watch."""
    if not headers:
        return
    present = [
        i for i, (name, _) in enumerate(call.answer_headers) if name == "RateLimit-Remaining"
    ]
    if not present:
        call.answer_headers += headers
        return
    new = dict(headers)
    if int(new["RateLimit-Remaining"]) < int(call.answer_headers[present[0]][1]):
        call.answer_headers[:] = [
            (name, new.get(name, value)) if name.startswith("RateLimit-") else (name, value)
            for name, value in call.answer_headers
        ]


def _first(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    return next((value for n, value in headers if n == name), None)


# --- what the document and the dashboard say --------------------------------------
_RATE_HEADERS = {
    "RateLimit-Limit": {"schema": {"type": "integer"}, "description": "tokens per window"},
    "RateLimit-Remaining": {"schema": {"type": "integer"}, "description": "tokens left"},
    "RateLimit-Reset": {"schema": {"type": "integer"}, "description": "seconds to a full bucket"},
}


def describe(route: Route, description: Description) -> None:
    description.ok_headers.update(_RATE_HEADERS)
    description.refusal(
        429,
        "The route's rate limit",
        {**_RATE_HEADERS, "Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    )


def _summary(route: Route) -> str | None:
    spec = OPTION.of(route)
    if spec is None:
        return None
    return f"rate limit: {spec.limit} per {spec.window:g} s (burst {spec.burst}) by {spec.key}"


POLICY = Policy(
    name="rate_limit", option=OPTION, stage=rate_limit_stage, describe=describe, summary=_summary
)
