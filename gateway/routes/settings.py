"""The `settings:` section, and the pieces routes share with it: CORS policies
and lists of forwarded headers."""

from __future__ import annotations

import re

from gateway.routes.model import CorsPolicy, GatewaySettings
from gateway.routes.reader import NOT_FORWARDABLE, Reader
from gateway.routes.source import Node

__all__ = ["read_cors", "read_forward_headers", "read_settings"]

_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def read_forward_headers(r: Reader, node: Node, where: str) -> tuple[str, ...] | None:
    items = r.listing(node, where)
    if items is None:
        return None
    names = []
    for i, item in enumerate(items):
        name = r.header_name(item, f"{where}[{i}]")
        if name is None:
            continue
        if name in NOT_FORWARDABLE:
            r.error(item, f"{where}[{i}]", f"{item.value!r} is set by the gateway, not forwarded")
            continue
        names.append(name)
    return tuple(dict.fromkeys(names))


_CORS_KEYS = (
    "allow_origins",
    "allow_headers",
    "allow_methods",
    "expose_headers",
    "allow_credentials",
    "max_age",
)


def read_cors(r: Reader, node: Node, where: str) -> CorsPolicy | None:
    fields = r.mapping(node, where, allowed=_CORS_KEYS, required=("allow_origins",))
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


def read_settings(r: Reader, node: Node | None) -> GatewaySettings:
    defaults = GatewaySettings()
    if node is None:
        return defaults
    fields = r.mapping(
        node,
        "settings",
        allowed=(
            "timeout",
            "max_body_size",
            "max_response_size",
            "forward_headers",
            "cors",
            "max_streams_per_client",
        ),
    )
    if not fields:
        return defaults
    timeout = max_body = max_response = forward = cors = None
    if "timeout" in fields:
        timeout = r.duration(fields["timeout"], "settings.timeout")
    if "max_body_size" in fields:
        max_body = r.size(fields["max_body_size"], "settings.max_body_size")
    if "max_response_size" in fields:
        max_response = r.size(fields["max_response_size"], "settings.max_response_size")
    if "forward_headers" in fields:
        forward = read_forward_headers(r, fields["forward_headers"], "settings.forward_headers")
    if "cors" in fields:
        cors = read_cors(r, fields["cors"], "settings.cors")
    per_client = None
    if "max_streams_per_client" in fields:
        per_client = r.integer(fields["max_streams_per_client"], "settings.max_streams_per_client")
    return GatewaySettings(
        timeout=timeout or defaults.timeout,
        max_body_size=max_body or defaults.max_body_size,
        max_response_size=max_response or defaults.max_response_size,
        forward_headers=defaults.forward_headers if forward is None else forward,
        cors=cors,
        max_streams_per_client=per_client or defaults.max_streams_per_client,
    )
