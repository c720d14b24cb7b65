"""The `upstreams:` section: named services, the only place hosts come from."""

from __future__ import annotations

import os
import ssl
from urllib.parse import urlsplit

from gateway.routes.keys import BOOL, DURATION, INT, SIZE, STRING, Key, MapOf, Section, Value
from gateway.routes.model import CircuitBreaker, Retries, Upstream, UpstreamTls
from gateway.routes.reader import NAME, NOT_FORWARDABLE, Reader
from gateway.routes.source import Node
from gateway.routes.templates import STATIC_PATH
from gateway.routes.tls import build_context
from gateway.routes.traffic import TRAFFIC_KEYS, read_traffic

__all__ = ["UPSTREAM", "read_upstream"]

RETRIES = Section((Key(name="attempts", value=INT), Key(name="backoff", value=DURATION)))
CIRCUIT_BREAKER = Section(
    (
        Key(name="failures", value=INT, required=True),
        Key(name="cooldown", value=DURATION, required=True),
    )
)
TLS = Section(
    (
        Key(name="ca", value=STRING, example="certs/ca.pem"),
        Key(
            name="cert",
            value=STRING,
            example="certs/gateway.pem",
            needs={"key": "certs/gateway-key.pem"},
        ),
        Key(
            name="key",
            value=STRING,
            example="certs/gateway-key.pem",
            needs={"cert": "certs/gateway.pem"},
        ),
        Key(name="server_name", value=STRING, example="users.internal"),
        Key(name="verify", value=BOOL, example=True),
        Key(name="insecure", value=BOOL, example=False),
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
            wrong=["http://u.example"],
        ),
        Key(name="timeout", value=DURATION),
        Key(name="headers", value=MapOf(STRING, "X-Static")),
        Key(name="retries", value=RETRIES),
        Key(name="circuit_breaker", value=CIRCUIT_BREAKER),
        Key(name="max_connections", value=INT),
        Key(name="max_streams", value=INT),
        Key(name="max_header_size", value=SIZE),
        Key(name="tls", value=TLS, needs={"url": "https://u.example:8443"}),
        *TRAFFIC_KEYS,
    ),
    # `url:` or `targets:`, not both.
    extra={"oneOf": [{"required": ["url"]}, {"required": ["targets"]}]},
    sample={"url": "http://u.example:8080"},
)


def read_upstream(r: Reader, name: str, node: Node) -> Upstream | None:
    where = f"upstream {name!r}"
    if not NAME.fullmatch(name):
        r.error(node, where, "names may use letters, digits, '_', '.', ':' and '-'")
    fields = UPSTREAM.fields(r, node, where)
    if fields is None:
        return None
    if ("url" in fields) == ("targets" in fields):
        r.error(node, where, "give it a url: or a list of targets: (one of the two)")
        return None
    traffic = read_traffic(r, fields, where, _parse_upstream_url)
    parsed = None
    if "url" in fields:
        url = r.string(fields["url"], f"{where}: url")
        parsed = _parse_upstream_url(r, fields["url"], where, url) if url else None
    elif traffic is not None:
        parsed = traffic[1]
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
    tls = None
    if "tls" in fields and parsed is not None:
        tls = _read_tls(r, fields["tls"], f"{where}: tls", parsed[0])
    if parsed is None or timeout is None or traffic is None:
        return None
    scheme, host, port, base_path = parsed
    read = traffic[0]
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
        tls=tls,
        targets=read.targets,
        balance=read.balance,
        outlier=read.outlier,
        health_check=read.health_check,
        sticky=read.sticky,
        override_header=read.override_header,
    )


def _read_tls(r: Reader, node: Node, where: str, scheme: str) -> UpstreamTls | None:
    """`tls:`, its files checked now: each must load (a config error at its line)."""
    fields = TLS.fields(r, node, where)
    if fields is None:
        return None
    if scheme != "https":
        r.error(node, where, "only an https:// upstream speaks TLS")
        return None
    files: dict[str, str] = {}
    for key in ("ca", "cert", "key"):
        if key in fields and (text := r.string(fields[key], f"{where}.{key}")):
            path = (r.base / text).absolute()
            if not os.access(path, os.R_OK) or not path.is_file():
                r.error(fields[key], f"{where}.{key}", f"cannot read {path}")
                return None
            files[key] = str(path)
            r.files.add(path)
    if ("cert" in files) != ("key" in files):
        r.error(node, where, "cert and key go together (a client certificate and its key)")
        return None
    flags = {k: r.boolean(fields[k], f"{where}.{k}") for k in ("verify", "insecure") if k in fields}
    verify = flags.get("verify") is not False
    if not verify and flags.get("insecure") is not True:
        r.error(fields["verify"], f"{where}.verify", "verify: false needs insecure: true beside it")
        return None
    server_name = (
        r.string(fields["server_name"], f"{where}.server_name") if "server_name" in fields else None
    )
    tls = UpstreamTls(
        ca=files.get("ca"),
        cert=files.get("cert"),
        key=files.get("key"),
        server_name=server_name,
        verify=verify,
    )
    try:
        build_context(tls)
    except (OSError, ssl.SSLError) as exc:
        r.error(node, where, f"the certificate files do not load: {exc}")
        return None
    return tls


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
