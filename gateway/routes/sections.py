"""Build the non-route sections of a routes file: settings, upstreams, auth, cors.

Each `read_*` function takes a node and the shared `Reader`, records problems
with their lines, and returns a frozen value (or None when unusable).
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit

from gateway.routes.model import (
    ApiKey,
    ApiKeyProvider,
    AuthProvider,
    CircuitBreaker,
    CorsPolicy,
    GatewaySettings,
    JwtProvider,
    Retries,
    Upstream,
)
from gateway.routes.reader import Reader
from gateway.routes.source import Node
from gateway.routes.templates import _STATIC_PATH

__all__ = [
    "NOT_FORWARDABLE",
    "read_auth_provider",
    "read_cors",
    "read_forward_headers",
    "read_settings",
    "read_upstream",
]

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,99}")
# Headers the gateway owns or that describe one hop only: never copied from a client.
NOT_FORWARDABLE = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
        "proxy-authenticate",
        "proxy-connection",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-request-id",
    }
)
_HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
_ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
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


def read_cors(r: Reader, node: Node, where: str) -> CorsPolicy | None:
    fields = r.mapping(
        node,
        where,
        allowed=(
            "allow_origins",
            "allow_headers",
            "allow_methods",
            "expose_headers",
            "allow_credentials",
            "max_age",
        ),
        required=("allow_origins",),
    )
    if fields is None or "allow_origins" not in fields:
        return None
    ok = True
    origins = r.strings(fields["allow_origins"], f"{where}.allow_origins") or []
    for origin in origins:
        if origin != "*" and not _ORIGIN.fullmatch(origin):
            r.error(
                fields["allow_origins"], f"{where}.allow_origins", f"{origin!r} is not an origin"
            )
            ok = False
    headers: list[str] = []
    if "allow_headers" in fields:
        headers = [
            h.lower() for h in r.strings(fields["allow_headers"], f"{where}.allow_headers") or []
        ]
    expose: list[str] = []
    if "expose_headers" in fields:
        expose = r.strings(fields["expose_headers"], f"{where}.expose_headers") or []
    methods: list[str] = []
    if "allow_methods" in fields:
        methods = [
            m.upper() for m in r.strings(fields["allow_methods"], f"{where}.allow_methods") or []
        ]
        if bad := [m for m in methods if m not in _METHODS]:
            r.error(fields["allow_methods"], f"{where}.allow_methods", f"unknown method {bad[0]!r}")
            ok = False
    credentials = False
    if "allow_credentials" in fields:
        credentials = bool(r.boolean(fields["allow_credentials"], f"{where}.allow_credentials"))
        if credentials and "*" in origins:
            r.error(
                fields["allow_credentials"],
                f"{where}.allow_credentials",
                "cannot be true when allow_origins contains '*'",
            )
            ok = False
    max_age = 600.0
    if "max_age" in fields:
        max_age = r.duration(fields["max_age"], f"{where}.max_age") or max_age
    if not ok or not origins:
        return None
    return CorsPolicy(
        allow_origins=tuple(origins),
        allow_headers=tuple(headers),
        allow_methods=tuple(methods),
        expose_headers=tuple(expose),
        allow_credentials=credentials,
        max_age=max_age,
    )


def read_settings(r: Reader, node: Node | None) -> GatewaySettings:
    defaults = GatewaySettings()
    if node is None:
        return defaults
    fields = r.mapping(
        node,
        "settings",
        allowed=("timeout", "max_body_size", "max_response_size", "forward_headers", "cors"),
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
    return GatewaySettings(
        timeout=timeout or defaults.timeout,
        max_body_size=max_body or defaults.max_body_size,
        max_response_size=max_response or defaults.max_response_size,
        forward_headers=defaults.forward_headers if forward is None else forward,
        cors=cors,
    )


def read_upstream(r: Reader, name: str, node: Node) -> Upstream | None:
    where = f"upstream {name!r}"
    if not NAME.fullmatch(name):
        r.error(node, where, "names may use letters, digits, '_', '.', ':' and '-'")
    fields = r.mapping(
        node,
        where,
        allowed=(
            "url",
            "timeout",
            "headers",
            "retries",
            "circuit_breaker",
            "max_connections",
            "max_header_size",
        ),
        required=("url",),
    )
    if fields is None or "url" not in fields:
        return None
    url = r.string(fields["url"], f"{where}: url")
    parsed = _parse_upstream_url(r, fields["url"], where, url) if url else None
    timeout = r.duration(fields["timeout"], f"{where}: timeout") if "timeout" in fields else 5.0
    max_connections = 100
    if "max_connections" in fields:
        max_connections = r.integer(fields["max_connections"], f"{where}: max_connections") or 100
    max_header_size = 64 * 1024
    if "max_header_size" in fields:
        where_size = f"{where}: max_header_size"
        max_header_size = r.size(fields["max_header_size"], where_size) or max_header_size
    headers: tuple[tuple[str, str], ...] = ()
    if "headers" in fields:
        headers = _read_static_headers(r, fields["headers"], f"{where}: headers")
    retries = Retries()
    if "retries" in fields:
        retries = _read_retries(r, fields["retries"], f"{where}: retries")
    breaker = None
    if "circuit_breaker" in fields:
        breaker = _read_breaker(r, fields["circuit_breaker"], f"{where}: circuit_breaker")
    if parsed is None or timeout is None:
        return None
    scheme, host, port, base_path = parsed
    return Upstream(
        name=name,
        scheme=scheme,  # type: ignore[arg-type]  # checked by _parse_upstream_url
        host=host,
        port=port,
        base_path=base_path,
        timeout=timeout,
        headers=headers,
        retries=retries,
        circuit_breaker=breaker,
        max_connections=max_connections,
        max_header_size=max_header_size,
    )


def _parse_upstream_url(
    r: Reader, node: Node, where: str, url: str
) -> tuple[str, str, int, str] | None:
    where = f"{where}: url"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        r.error(node, where, f"invalid URL {url!r}: {exc}")
        return None
    if parts.scheme not in ("http", "https"):
        r.error(node, where, f"{url!r} must start with http:// or https://")
        return None
    if not parts.hostname:
        r.error(node, where, f"{url!r} has no host")
        return None
    if parts.username is not None or parts.password is not None:
        r.error(node, where, "credentials in the URL are not allowed (use headers)")
        return None
    if parts.query or parts.fragment:
        r.error(node, where, "an upstream URL may not have a query or fragment")
        return None
    base = parts.path.rstrip("/")
    if not _STATIC_PATH.fullmatch(base) or any(s in (".", "..") for s in base.split("/")):
        r.error(node, where, f"invalid base path {parts.path!r}")
        return None
    host = parts.hostname
    default_port = 443 if parts.scheme == "https" else 80
    return parts.scheme, host, port or default_port, base


def _read_static_headers(r: Reader, node: Node, where: str) -> tuple[tuple[str, str], ...]:
    raw = r.string_map(node, where) or {}
    out = []
    assert isinstance(node.value, dict)
    for name, value in raw.items():
        key_node = node.value[name]
        lower = r.header_name(Node(name, node.key_lines.get(name, node.line)), f"{where}.{name}")
        checked = r.header_value(key_node, f"{where}.{name}", value)
        if lower is None or checked is None:
            continue
        if lower in NOT_FORWARDABLE:
            r.error(key_node, f"{where}.{name}", "this header is set by the gateway")
            continue
        out.append((lower, checked))
    return tuple(out)


def _read_retries(r: Reader, node: Node, where: str) -> Retries:
    fields = r.mapping(node, where, allowed=("attempts", "backoff"))
    if not fields:
        return Retries()
    attempts = r.integer(fields["attempts"], f"{where}.attempts") if "attempts" in fields else 1
    if attempts and attempts > 10:
        r.error(fields["attempts"], f"{where}.attempts", "at most 10")
    backoff = r.duration(fields["backoff"], f"{where}.backoff") if "backoff" in fields else 0.05
    return Retries(attempts=attempts or 1, backoff=backoff or 0.05)


def _read_breaker(r: Reader, node: Node, where: str) -> CircuitBreaker | None:
    fields = r.mapping(
        node, where, allowed=("failures", "cooldown"), required=("failures", "cooldown")
    )
    if not fields or len(fields) != 2:
        return None
    failures = r.integer(fields["failures"], f"{where}.failures")
    cooldown = r.duration(fields["cooldown"], f"{where}.cooldown")
    if failures is None or cooldown is None:
        return None
    return CircuitBreaker(failures=failures, cooldown=cooldown)


def _loads_public_key(pem: str) -> bool:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        load_pem_public_key(pem.encode())
    except (ValueError, TypeError):
        return False
    return True


def read_auth_provider(r: Reader, name: str, node: Node) -> AuthProvider | None:
    where = f"auth provider {name!r}"
    if not NAME.fullmatch(name):
        r.error(node, where, "names may use letters, digits, '_', '.', ':' and '-'")
    if not isinstance(node.value, dict) or "type" not in node.value:
        r.error(node, where, "missing required key 'type' (api_key or jwt)")
        return None
    kind = node.value["type"].value
    if kind == "api_key":
        return _read_api_key_provider(r, name, node, where)
    if kind == "jwt":
        return _read_jwt_provider(r, name, node, where)
    r.error(node.value["type"], f"{where}: type", f"unknown type {kind!r} (api_key or jwt)")
    return None


def _read_api_key_provider(r: Reader, name: str, node: Node, where: str) -> ApiKeyProvider | None:
    fields = r.mapping(
        node, where, allowed=("type", "header", "keys", "identity_header"), required=("keys",)
    )
    if fields is None or "keys" not in fields:
        return None
    header, display = "x-api-key", "X-API-Key"
    if "header" in fields and (lower := r.header_name(fields["header"], f"{where}: header")):
        header, display = lower, str(fields["header"].value)
    identity = None
    if "identity_header" in fields:
        identity = r.header_name(fields["identity_header"], f"{where}: identity_header")
    keys: list[ApiKey] = []
    seen_ids: dict[str, int] = {}
    seen_digests: set[bytes] = set()
    for i, key_node in enumerate(r.listing(fields["keys"], f"{where}: keys") or []):
        kw = f"{where}: keys[{i}]"
        kf = r.mapping(key_node, kw, allowed=("id", "key", "sha256", "scopes"), required=("id",))
        if kf is None or "id" not in kf:
            continue
        key_id = r.string(kf["id"], f"{kw}.id")
        if ("key" in kf) == ("sha256" in kf):
            r.error(key_node, kw, "needs exactly one of 'key' or 'sha256'")
            continue
        digest: bytes | None = None
        if "key" in kf and (plain := r.string(kf["key"], f"{kw}.key")):
            digest = hashlib.sha256(plain.encode()).digest()
        elif "sha256" in kf and (hexdigest := r.string(kf["sha256"], f"{kw}.sha256")):
            if re.fullmatch(r"[0-9a-fA-F]{64}", hexdigest.strip()):
                digest = bytes.fromhex(hexdigest.strip())
            else:
                r.error(kf["sha256"], f"{kw}.sha256", "must be 64 hexadecimal characters")
        scopes = r.strings(kf["scopes"], f"{kw}.scopes") if "scopes" in kf else []
        if key_id is None or digest is None or scopes is None:
            continue
        if key_id in seen_ids:
            r.error(kf["id"], f"{kw}.id", f"duplicate key id {key_id!r}")
            continue
        if digest in seen_digests:
            r.error(key_node, kw, "the same key is listed twice")
            continue
        seen_ids[key_id] = i
        seen_digests.add(digest)
        keys.append(ApiKey(id=key_id, digest=digest, scopes=frozenset(scopes)))
    if identity is not None and identity in NOT_FORWARDABLE:
        r.error(
            fields["identity_header"],
            f"{where}: identity_header",
            "this header is set by the gateway",
        )
    return ApiKeyProvider(
        name=name, header=header, header_display=display, keys=tuple(keys), identity_header=identity
    )


def _read_jwt_provider(r: Reader, name: str, node: Node, where: str) -> JwtProvider | None:
    fields = r.mapping(
        node,
        where,
        allowed=(
            "type",
            "algorithms",
            "issuer",
            "audience",
            "jwks_url",
            "secret",
            "public_key",
            "scopes_claim",
            "identity_claim",
            "claims_to_headers",
            "require_exp",
        ),
        required=("algorithms",),
    )
    if fields is None or "algorithms" not in fields:
        return None
    algorithms = r.strings(fields["algorithms"], f"{where}: algorithms") or []
    ok = bool(algorithms)
    for alg in algorithms:
        if alg.lower() == "none":
            r.error(fields["algorithms"], f"{where}: algorithms", "'none' is never accepted")
            ok = False
        elif alg not in _HMAC_ALGORITHMS | _ASYMMETRIC_ALGORITHMS:
            r.error(fields["algorithms"], f"{where}: algorithms", f"unknown algorithm {alg!r}")
            ok = False
    sources = [k for k in ("jwks_url", "secret", "public_key") if k in fields]
    if len(sources) != 1:
        r.error(node, where, "needs exactly one of 'jwks_url', 'secret' or 'public_key'")
        return None
    text = {
        k: r.string(fields[k], f"{where}: {k}")
        for k in ("issuer", "audience", *sources)
        if k in fields
    }
    source = sources[0]
    if ok and source == "secret" and not set(algorithms) <= _HMAC_ALGORITHMS:
        r.error(
            fields["algorithms"], f"{where}: algorithms", "a 'secret' works only with HS256/384/512"
        )
        ok = False
    if ok and source != "secret" and not set(algorithms) <= _ASYMMETRIC_ALGORITHMS:
        r.error(
            fields["algorithms"],
            f"{where}: algorithms",
            f"HS* algorithms need a 'secret', not {source!r}",
        )
        ok = False
    if source == "public_key" and (pem := text.get("public_key")) and not _loads_public_key(pem):
        r.error(
            fields["public_key"],
            f"{where}: public_key",
            "not a PEM public key (RSA, EC or Ed25519)",
        )
        ok = False
    if (
        source == "jwks_url"
        and text.get("jwks_url")
        and not str(text["jwks_url"]).startswith(("http://", "https://"))
    ):
        r.error(fields["jwks_url"], f"{where}: jwks_url", "must be an http(s) URL")
        ok = False
    claims: dict[str, str] = {}
    if "claims_to_headers" in fields:
        claims = r.string_map(fields["claims_to_headers"], f"{where}: claims_to_headers") or {}
        for claim, header in list(claims.items()):
            lower = r.header_name(
                Node(header, fields["claims_to_headers"].line),
                f"{where}: claims_to_headers.{claim}",
            )
            if lower is None or lower in NOT_FORWARDABLE:
                ok = False
            else:
                claims[claim] = lower
    scopes_claim = (
        r.string(fields["scopes_claim"], f"{where}: scopes_claim")
        if "scopes_claim" in fields
        else "scope"
    )
    identity_claim = (
        r.string(fields["identity_claim"], f"{where}: identity_claim")
        if "identity_claim" in fields
        else "sub"
    )
    require_exp = True
    if "require_exp" in fields:
        require_exp = r.boolean(fields["require_exp"], f"{where}: require_exp") is not False
    if not ok or None in text.values() or scopes_claim is None or identity_claim is None:
        return None
    return JwtProvider(
        name=name,
        algorithms=tuple(algorithms),
        issuer=text.get("issuer"),
        audience=text.get("audience"),
        jwks_url=text.get("jwks_url"),
        secret=text.get("secret"),
        public_key=text.get("public_key"),
        scopes_claim=scopes_claim,
        identity_claim=identity_claim,
        claims_to_headers=tuple(claims.items()),
        require_exp=require_exp,
    )
