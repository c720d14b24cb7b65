"""CORS (SPEC 3.8): with a `cors` policy on the route (or in settings) the
gateway owns CORS. It answers preflights itself (204, before auth and rate
limits, never forwarded) and adds Access-Control-Allow-Origin, with
`Vary: Origin`, to every answer for an allowed origin (errors too). A
disallowed origin gets no CORS headers. Upstreams' own Access-Control-*
headers are dropped by the proxy route kind, so they never appear twice.

A preflight is matched (gateway/edge/intake.py) to the route that would
serve the method it announces, when that route has CORS: this stage, first
in that route's stack, answers it. A WebSocket handshake is not subject to
the browser's CORS checks: with CORS configured, the gateway refuses a
browser's disallowed Origin itself (403); clients that send no Origin (not
browsers) are not asked. On `grpc` routes (gRPC-Web from browsers) the
headers a gRPC-Web client sends are always allowed, and grpc-status,
grpc-message and grpc-status-details-bin always exposed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from django.http import HttpResponse

from gateway.envelope import RouteCall
from gateway.errors import Forbidden
from gateway.routes.keys import BOOL, DURATION, STRINGS, Key, Section, Value
from gateway.routes.model import Route
from gateway.routes.reader import Reader
from gateway.routes.source import Node
from gateway.routes.vocabulary import Option, RouteContext
from gateway.stack import Answer, BuildContext, Policy, RouteHandler, RouteStage

__all__ = ["OPTION", "POLICY", "CorsPolicy", "RouteCors", "build_cors", "read_cors"]

_PREFLIGHT_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+")
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


# --- the routes file -------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class CorsPolicy:
    allow_origins: tuple[str, ...]
    allow_headers: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    allow_credentials: bool = False
    max_age: float = 600.0

    @property
    def any_origin(self) -> bool:
        return "*" in self.allow_origins


SECTION = Section(
    (
        Key(
            name="allow_origins",
            value=STRINGS,
            required=True,
            example=["https://app.example"],
            wrong="https://app.example",
        ),
        Key(name="allow_headers", value=STRINGS),
        Key(
            name="allow_methods",
            value=Value({"type": "array", "items": {"enum": list(_METHODS)}}, ["GET"], ["FETCH"]),
        ),
        Key(name="expose_headers", value=STRINGS),
        Key(name="allow_credentials", value=BOOL),
        Key(name="max_age", value=DURATION),
    )
)


def read_cors(r: Reader, node: Node, where: str) -> CorsPolicy | None:
    fields = SECTION.fields(r, node, where)
    if fields is None or "allow_origins" not in fields:
        return None
    origins = _read_origins(r, fields["allow_origins"], f"{where}.allow_origins")
    lists = {
        key: r.strings(fields[key], f"{where}.{key}") or [] if key in fields else []
        for key in ("allow_headers", "allow_methods", "expose_headers")
    }
    methods = [m.upper() for m in lists["allow_methods"]]
    if bad := [m for m in methods if m not in _METHODS]:
        r.error(fields["allow_methods"], f"{where}.allow_methods", f"unknown method {bad[0]!r}")
        return None
    credentials = False
    if "allow_credentials" in fields:
        credentials = bool(r.boolean(fields["allow_credentials"], f"{where}.allow_credentials"))
        if credentials and origins and "*" in origins:
            message = "cannot be true when allow_origins contains '*'"
            r.error(fields["allow_credentials"], f"{where}.allow_credentials", message)
            return None
    max_age = 600.0
    if "max_age" in fields:
        max_age = r.duration(fields["max_age"], f"{where}.max_age") or max_age
    if not origins:
        return None
    return CorsPolicy(
        allow_origins=tuple(origins),
        allow_headers=tuple(h.lower() for h in lists["allow_headers"]),
        allow_methods=tuple(methods),
        expose_headers=tuple(lists["expose_headers"]),
        allow_credentials=credentials,
        max_age=max_age,
    )


def _read_origins(r: Reader, node: Node, where: str) -> list[str] | None:
    """The allowed origins, or None when one of them is not an origin."""
    origins = r.strings(node, where) or []
    bad = [o for o in origins if o != "*" and not _ORIGIN.fullmatch(o)]
    for origin in bad:
        r.error(node, where, f"{origin!r} is not an origin")
    return None if bad else origins


def _read(r: Reader, fields: Mapping[str, Node], ctx: RouteContext) -> CorsPolicy | None:
    return read_cors(r, fields["cors"], ctx.at("cors"))


OPTION = Option[CorsPolicy](
    name="cors",
    keys=(Key(name="cors", value=SECTION, nullable=True),),
    read=_read,
    in_settings=True,
)


# --- the stage -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RouteCors:
    origins: frozenset[str]
    any_origin: bool
    credentials: bool
    preflight: tuple[tuple[str, str], ...]  # besides the origin
    expose: str | None

    def allows(self, origin: str) -> bool:
        return self.any_origin or origin in self.origins


def _with(listed: tuple[str, ...], more: tuple[str, ...]) -> tuple[str, ...]:
    have = {name.lower() for name in listed}
    return listed + tuple(name for name in more if name.lower() not in have)


def build_cors(route: Route, policy: CorsPolicy) -> RouteCors:
    methods = policy.allow_methods or tuple(sorted(route.methods))
    # A kind may need headers whatever the route lists (grpc: gRPC-Web's).
    allow = _with(policy.allow_headers, getattr(route.kind, "cors_allow", ()))
    expose = _with(policy.expose_headers, getattr(route.kind, "cors_expose", ()))
    preflight = [
        ("Access-Control-Allow-Methods", ", ".join(methods)),
        ("Access-Control-Max-Age", str(int(policy.max_age))),
    ]
    if allow:
        preflight.append(("Access-Control-Allow-Headers", ", ".join(allow)))
    return RouteCors(
        origins=frozenset(policy.allow_origins),
        any_origin=policy.any_origin,
        credentials=policy.allow_credentials and not policy.any_origin,
        preflight=tuple(preflight),
        expose=", ".join(expose) or None,
    )


def cors_stage(route: Route, context: BuildContext) -> RouteStage | None:
    policy = OPTION.of(route)
    if policy is None:
        return None
    cors = build_cors(route, policy)

    def stage(inner: RouteHandler) -> RouteHandler:
        async def handler(call: RouteCall) -> Answer:
            origin = _origin(call)
            if call.request is None:  # a WebSocket handshake
                if origin is not None and not cors.allows(origin):
                    raise Forbidden(f"origin {origin!r} is not allowed")
                return await inner(call)
            if call.envelope.preflight and origin:
                return _preflight(cors, origin)
            headers = call.answer_headers
            headers.append(("Vary", "Origin"))
            if origin and cors.allows(origin):
                headers.append(("Access-Control-Allow-Origin", origin))
                if cors.credentials:
                    headers.append(("Access-Control-Allow-Credentials", "true"))
                if cors.expose:
                    headers.append(("Access-Control-Expose-Headers", cors.expose))
            return await inner(call)

        return handler

    return stage


def _origin(call: RouteCall) -> str | None:
    for name, value in call.scope["headers"]:
        if name == b"origin":
            return str(value.decode("latin-1"))
    return None


def _preflight(cors: RouteCors, origin: str) -> HttpResponse:
    response = HttpResponse(status=204)
    del response.headers["Content-Type"]
    response.headers["Vary"] = _PREFLIGHT_VARY
    if cors.allows(origin):
        response.headers["Access-Control-Allow-Origin"] = origin
        for name, value in cors.preflight:
            response.headers[name] = value
        if cors.credentials:
            response.headers["Access-Control-Allow-Credentials"] = "true"
    return response


def _summary(route: Route) -> str | None:
    policy = OPTION.of(route)
    return None if policy is None else "cors: " + ", ".join(policy.allow_origins)


POLICY = Policy(
    name="cors", option=OPTION, stage=cors_stage, summary=_summary, answers_preflights=True
)
