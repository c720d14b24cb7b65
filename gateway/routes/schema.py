"""The JSON Schema of the routes file (SPEC 3.15), for editors: completion
and checks while typing (`# yaml-language-server: $schema=...` at the top of
a routes file). `manage.py routes_schema` prints it; `routes.schema.json` in
the repository is that output, kept equal by a test.

The loader stays the authority (it checks what a schema cannot: upstream and
provider names that exist, `{param}`s that the path has, reference cycles,
routes that collide); the schema rejects every key the loader does not know,
so a typo is caught in the editor already. `${VAR}` is accepted wherever a
value may be, since it is replaced when the file loads.
"""

from __future__ import annotations

from typing import Any

__all__ = ["routes_schema"]

_VAR = {"type": "string", "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"}
_DURATION = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$"},
        _VAR,
    ],
    "description": "250ms, 2s, 1m, 1h, or seconds",
}
_SIZE = {
    "anyOf": [
        {"type": "integer", "minimum": 0},
        {"type": "string", "pattern": r"^\s*\d+\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$"},
        _VAR,
    ],
    "description": "512KiB, 1MiB, or bytes",
}
_INT = {"anyOf": [{"type": "integer", "minimum": 1}, _VAR]}
_BOOL = {"anyOf": [{"type": "boolean"}, _VAR]}
_STRING = {"type": "string"}
_STRINGS = {"type": "array", "items": _STRING}
_NAME = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,99}$"}
_HEADER = {"type": "string", "pattern": r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$"}
_HOOKS = {"type": "array", "items": {"type": "string", "pattern": r"^[\w.]+:[\w.]+$"}}


def _object(properties: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> Any:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = list(required)
    schema.update(extra)
    return schema


def _cors() -> Any:
    return _object(
        {
            "allow_origins": _STRINGS,
            "allow_headers": _STRINGS,
            "allow_methods": _STRINGS,
            "expose_headers": _STRINGS,
            "allow_credentials": _BOOL,
            "max_age": _DURATION,
        },
        ("allow_origins",),
    )


def _hooks(stages: tuple[str, ...]) -> Any:
    return _object(dict.fromkeys(stages, _HOOKS))


def _upstream() -> Any:
    return _object(
        {
            "url": {"type": "string", "description": "http:// or https://, host, port, base path"},
            "timeout": _DURATION,
            "headers": {"type": "object", "additionalProperties": _STRING},
            "retries": _object({"attempts": _INT, "backoff": _DURATION}),
            "circuit_breaker": _object(
                {"failures": _INT, "cooldown": _DURATION}, ("failures", "cooldown")
            ),
            "max_connections": _INT,
            "max_streams": _INT,
            "max_header_size": _SIZE,
        },
        ("url",),
    )


def _provider() -> Any:
    key = _object(
        {
            "id": _STRING,
            "key": _STRING,
            "sha256": {"anyOf": [{"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}, _VAR]},
            "scopes": _STRINGS,
        },
        ("id",),
        oneOf=[{"required": ["key"]}, {"required": ["sha256"]}],
    )
    api_key = _object(
        {
            "type": {"const": "api_key"},
            "header": _HEADER,
            "keys": {"type": "array", "items": key},
            "identity_header": _HEADER,
            "query_param": _STRING,
        },
        ("type", "keys"),
    )
    jwt = _object(
        {
            "type": {"const": "jwt"},
            "algorithms": _STRINGS,
            "issuer": _STRING,
            "audience": _STRING,
            "jwks_url": _STRING,
            "secret": _STRING,
            "public_key": _STRING,
            "scopes_claim": _STRING,
            "identity_claim": _STRING,
            "claims_to_headers": {"type": "object", "additionalProperties": _HEADER},
            "require_exp": _BOOL,
            "query_param": _STRING,
        },
        ("type", "algorithms"),
        oneOf=[{"required": [k]} for k in ("jwks_url", "secret", "public_key")],
    )
    return {"oneOf": [api_key, jwt]}


def _backend() -> Any:
    fields = {"type": "array", "items": _STRING}
    return _object(
        {
            "upstream": _NAME,
            "path": _STRING,
            "query": {"type": "object", "additionalProperties": _STRING},
            "key": _STRING,
            "required": _BOOL,
            "target": _STRING,
            "allow": fields,
            "deny": fields,
            "rename": {"type": "object", "additionalProperties": _STRING},
            "name": _NAME,
            "method": {"enum": ["GET", "POST"]},
            "forward_headers": {"type": "array", "items": _HEADER},
        },
        ("upstream", "path"),
    )


def _route() -> Any:
    common = {
        "name": _NAME,
        "path": {"type": "string", "pattern": "^/"},
        "methods": {
            "type": "array",
            "items": {"enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]},
        },
        "auth": {"anyOf": [_NAME, {"type": "array", "items": _NAME}]},
        "scopes": _STRINGS,
        "rate_limit": _object(
            {
                "limit": _INT,
                "window": _DURATION,
                "burst": _INT,
                "key": {"type": "string", "pattern": r"^(client|ip|global|header:.+)$"},
            },
            ("limit", "window"),
        ),
        "timeout": _DURATION,
        "max_body_size": _SIZE,
        "cors": _cors(),
        "summary": _STRING,
        "description": _STRING,
        "tags": _STRINGS,
    }
    aggregate = {
        "backends": {"type": "array", "items": _backend(), "minItems": 1},
        "cache": _object({"ttl": _DURATION}, ("ttl",)),
        "stream": _BOOL,
        "hooks": _hooks(("request", "backend", "response")),
    }
    proxy = {
        "proxy": _object(
            {"upstream": _NAME, "path": _STRING, "idle_timeout": _DURATION}, ("upstream", "path")
        ),
        "hooks": _hooks(("request",)),
    }
    websocket = {
        "websocket": _object(
            {
                "upstream": _NAME,
                "path": _STRING,
                "subprotocols": {"type": "array", "items": _HEADER},
                "max_message_size": _SIZE,
                "idle_timeout": _DURATION,
            },
            ("upstream", "path"),
        ),
        "hooks": _hooks(("request",)),
    }
    return {
        "oneOf": [
            _object({**common, **kind}, ("name", "path", key))
            for key, kind in (("backends", aggregate), ("proxy", proxy), ("websocket", websocket))
        ]
    }


def routes_schema() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://example.com/gateway/routes.schema.json",
        "title": "Gateway routes file",
        "description": "Every key: docs/routes.md",
        **_object(
            {
                "version": {"const": 1},
                "settings": _object(
                    {
                        "timeout": _DURATION,
                        "max_body_size": _SIZE,
                        "max_response_size": _SIZE,
                        "forward_headers": {"type": "array", "items": _HEADER},
                        "cors": _cors(),
                        "max_streams_per_client": _INT,
                    }
                ),
                "upstreams": {"type": "object", "additionalProperties": _upstream()},
                "auth": {"type": "object", "additionalProperties": _provider()},
                "hooks": _hooks(("request", "backend", "response")),
                "routes": {"type": "array", "items": _route()},
            },
            ("version", "routes"),
        ),
    }
