"""The `upstreams:` section: named services, the only place hosts come from."""

from __future__ import annotations

from urllib.parse import urlsplit

from gateway.routes.keys import DURATION, INT, SIZE, STRING, Key, MapOf, Section, Value
from gateway.routes.model import CircuitBreaker, Retries, Upstream
from gateway.routes.reader import NAME, NOT_FORWARDABLE, Reader
from gateway.routes.source import Node
from gateway.routes.templates import STATIC_PATH

__all__ = ["UPSTREAM", "read_upstream"]

RETRIES = Section((Key(name="attempts", value=INT), Key(name="backoff", value=DURATION)))
CIRCUIT_BREAKER = Section(
    (
        Key(name="failures", value=INT, required=True),
        Key(name="cooldown", value=DURATION, required=True),
    )
)
UPSTREAM = Section(
    (
        Key(
            name="url",
            value=Value(
                {"type": "string", "description": "http:// or https://, host, port, base path"},
                "http://u.example:8080",
                "ftp://u.example",
            ),
            required=True,
            wrong=["http://u.example"],
        ),
        Key(name="timeout", value=DURATION),
        Key(name="headers", value=MapOf(STRING, "X-Static")),
        Key(name="retries", value=RETRIES),
        Key(name="circuit_breaker", value=CIRCUIT_BREAKER),
        Key(name="max_connections", value=INT),
        Key(name="max_streams", value=INT),
        Key(name="max_header_size", value=SIZE),
    )
)


def read_upstream(r: Reader, name: str, node: Node) -> Upstream | None:
    where = f"upstream {name!r}"
    if not NAME.fullmatch(name):
        r.error(node, where, "names may use letters, digits, '_', '.', ':' and '-'")
    fields = UPSTREAM.fields(r, node, where)
    if fields is None or "url" not in fields:
        return None
    url = r.string(fields["url"], f"{where}: url")
    parsed = _parse_upstream_url(r, fields["url"], where, url) if url else None
    timeout = r.duration(fields["timeout"], f"{where}: timeout") if "timeout" in fields else 5.0
    limits = {
        key: (r.size if key == "max_header_size" else r.integer)(fields[key], f"{where}: {key}")
        for key in ("max_connections", "max_streams", "max_header_size")
        if key in fields
    }
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
    max_connections = limits.get("max_connections") or 100
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
        # Half the pool by default: plain requests always keep the rest.
        max_streams=limits.get("max_streams") or max(1, max_connections // 2),
        max_header_size=limits.get("max_header_size") or 64 * 1024,
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
    if not STATIC_PATH.fullmatch(base) or any(s in (".", "..") for s in base.split("/")):
        r.error(node, where, f"invalid base path {parts.path!r}")
        return None
    host = parts.hostname
    default_port = 443 if parts.scheme == "https" else 80
    return parts.scheme, host, port or default_port, base


def _read_static_headers(r: Reader, node: Node, where: str) -> tuple[tuple[str, str], ...]:
    raw = r.string_map(node, where)
    if raw is None or not isinstance(node.value, dict):
        return ()
    out = []
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
    fields = RETRIES.fields(r, node, where)
    if not fields:
        return Retries()
    attempts = r.integer(fields["attempts"], f"{where}.attempts") if "attempts" in fields else 1
    if attempts and attempts > 10:
        r.error(fields["attempts"], f"{where}.attempts", "at most 10")
    backoff = r.duration(fields["backoff"], f"{where}.backoff") if "backoff" in fields else 0.05
    return Retries(attempts=attempts or 1, backoff=backoff or 0.05)


def _read_breaker(r: Reader, node: Node, where: str) -> CircuitBreaker | None:
    fields = CIRCUIT_BREAKER.fields(r, node, where)
    if not fields or len(fields) != 2:
        return None
    failures = r.integer(fields["failures"], f"{where}.failures")
    cooldown = r.duration(fields["cooldown"], f"{where}.cooldown")
    if failures is None or cooldown is None:
        return None
    return CircuitBreaker(failures=failures, cooldown=cooldown)
