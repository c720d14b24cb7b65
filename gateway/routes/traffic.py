"""An upstream's traffic keys (SPEC 3.17): `targets`, `balance`, `outlier`,
`health_check`, `sticky` and `override_header`. Read by upstreams.py, which
owns `url` and the rest; a block given in part takes the defaults for the rest."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from gateway.routes.keys import (
    DURATION,
    HEADER,
    INT,
    NAME,
    Key,
    ListOf,
    Section,
    Value,
    var_or,
)
from gateway.routes.model import HealthCheck, Outlier, Target
from gateway.routes.reader import NAME as NAME_PATTERN
from gateway.routes.reader import NOT_FORWARDABLE, Reader
from gateway.routes.source import Node
from gateway.routes.templates import STATIC_PATH

__all__ = ["TRAFFIC_KEYS", "Traffic", "read_traffic"]

TARGET = Section(
    (
        Key(
            name="url",
            value=Value(
                {"type": "string", "description": "the same scheme and base path as the others"},
                "http://u-1.example:8080",
                "ftp://u.example",
            ),
            required=True,
            wrong=["http://u.example"],
        ),
        Key(name="weight", value=Value(var_or({"type": "integer", "minimum": 0}), 3, "heavy")),
        Key(name="name", value=NAME),
    )
)
OUTLIER = Section(
    (
        Key(name="consecutive_failures", value=INT),
        Key(name="base_ejection", value=DURATION),
        Key(name="max_ejection", value=DURATION, example="10m"),
        Key(
            name="max_ejected_percent",
            value=Value(var_or({"type": "integer", "minimum": 0, "maximum": 100}), 50, "half"),
        ),
    )
)
HEALTH_CHECK = Section(
    (
        Key(
            name="path",
            value=Value({"type": "string", "pattern": "^/"}, "/healthz", "healthz"),
        ),
        Key(name="interval", value=DURATION),
        Key(name="timeout", value=DURATION),
        Key(name="unhealthy", value=INT),
        Key(name="healthy", value=INT),
    )
)
BALANCE = Value({"enum": ["least_request", "round_robin"]}, "round_robin", "random")
STICKY = Value(
    {"type": "string", "pattern": r"^(client|ip|header:[!#$%&'*+\-.^_`|~0-9A-Za-z]+)$"},
    "header:X-User",
    "cookie",
)
TRAFFIC_KEYS = (
    Key(
        name="targets",
        value=ListOf(TARGET, min_items=1),
        example=[
            {"url": "http://u-1.example:8080", "weight": 9},
            {"url": "http://u-2.example:8080", "weight": 1, "name": "canary"},
        ],
        drops=("url",),
    ),
    Key(name="balance", value=BALANCE),
    Key(name="outlier", value=OUTLIER),
    Key(name="health_check", value=HEALTH_CHECK),
    Key(name="sticky", value=STICKY),
    Key(name="override_header", value=HEADER, example="X-Canary"),
)


@dataclass(slots=True)
class Traffic:
    """The traffic keys, read; `targets` empty when `url:` names the one."""

    targets: tuple[Target, ...] = ()
    balance: Literal["least_request", "round_robin"] = "least_request"
    outlier: Outlier = field(default_factory=Outlier)
    health_check: HealthCheck | None = None
    sticky: str | None = None
    override_header: str | None = None


type ParsedUrl = tuple[str, str, int, str]  # scheme, host, port, base path
type UrlParser = Callable[[Reader, Node, str, str], ParsedUrl | None]


def read_traffic(
    r: Reader,
    fields: dict[str, Node],
    where: str,
    parse_url: UrlParser,
) -> tuple[Traffic, ParsedUrl | None] | None:
    """The traffic keys of one upstream, and the URL parts every target shares
    (from `targets:`; None when the upstream has `url:`)."""
    traffic = Traffic()
    shared: ParsedUrl | None = None
    ok = True
    if "targets" in fields:
        read = _read_targets(r, fields["targets"], f"{where}: targets", parse_url)
        if read is None:
            ok = False
        else:
            traffic.targets, shared = read
    if "balance" in fields:
        balance = r.string(fields["balance"], f"{where}: balance")
        if balance in ("least_request", "round_robin"):
            traffic.balance = balance  # type: ignore[assignment]  # one of the two
        elif balance is not None:
            r.error(fields["balance"], f"{where}: balance", "least_request or round_robin")
            ok = False
    if "outlier" in fields:
        outlier = _read_outlier(r, fields["outlier"], f"{where}: outlier")
        ok = ok and outlier is not None
        traffic.outlier = outlier or Outlier()
    if "health_check" in fields:
        traffic.health_check = _read_health(r, fields["health_check"], f"{where}: health_check")
        ok = ok and traffic.health_check is not None
    if "sticky" in fields:
        traffic.sticky = _read_sticky(r, fields["sticky"], f"{where}: sticky")
        ok = ok and traffic.sticky is not None
    if "override_header" in fields:
        node = fields["override_header"]
        name = r.header_name(node, f"{where}: override_header")
        if name is not None and name.lower() in NOT_FORWARDABLE:
            r.error(node, f"{where}: override_header", "this header is set by the gateway")
            name = None
        traffic.override_header = name.lower() if name else None
        ok = ok and name is not None
    return (traffic, shared) if ok else None


def _read_targets(
    r: Reader, node: Node, where: str, parse_url: UrlParser
) -> tuple[tuple[Target, ...], ParsedUrl] | None:
    items = r.listing(node, where)
    if items is None:
        return None
    if not items:
        r.error(node, where, "name at least one target")
        return None
    targets: list[Target] = []
    shared: ParsedUrl | None = None
    names: set[str] = set()
    ok = True
    for index, item in enumerate(items):
        at = f"{where}[{index}]"
        fields = TARGET.fields(r, item, at)
        if fields is None or "url" not in fields:
            ok = False
            continue
        url = r.string(fields["url"], f"{at}.url")
        parsed = parse_url(r, fields["url"], at, url) if url else None
        weight = 1
        if "weight" in fields:
            read = r.integer(fields["weight"], f"{at}.weight", minimum=0)
            if read is None:
                ok = False
            weight = read if read is not None else 1
        if parsed is None:
            ok = False
            continue
        scheme, host, port, base = parsed
        name = f"{host}:{port}"
        if "name" in fields:
            given = r.string(fields["name"], f"{at}.name")
            if given is not None and not NAME_PATTERN.fullmatch(given):
                r.error(fields["name"], f"{at}.name", "use letters, digits, '_', '.', ':', '-'")
                given = None
            if given is None:
                ok = False
            name = given or name
        if shared is None:
            shared = parsed
        elif (scheme, base) != (shared[0], shared[3]):
            r.error(
                fields["url"],
                f"{at}.url",
                f"every target has the first one's scheme and base path "
                f"({shared[0]}://...{shared[3] or '/'})",
            )
            ok = False
        if name in names:
            r.error(item, at, f"two targets are named {name!r} (give each a name:)")
            ok = False
        names.add(name)
        targets.append(Target(name, host, port, weight))
    if ok and targets and not any(t.weight for t in targets):
        r.error(node, where, "at least one target needs a weight above 0")
        ok = False
    if not ok or shared is None:
        return None
    return tuple(targets), shared


def _read_outlier(r: Reader, node: Node, where: str) -> Outlier | None:
    fields = OUTLIER.fields(r, node, where)
    if fields is None:
        return None
    defaults = Outlier()
    failures = defaults.consecutive_failures
    base, cap, percent = defaults.base_ejection, defaults.max_ejection, defaults.max_ejected_percent
    ok = True
    if "consecutive_failures" in fields:
        read = r.integer(fields["consecutive_failures"], f"{where}.consecutive_failures")
        ok = read is not None
        failures = read or failures
    for key in ("base_ejection", "max_ejection"):
        if key in fields:
            seconds = r.duration(fields[key], f"{where}.{key}")
            if seconds is None:
                ok = False
            elif key == "base_ejection":
                base = seconds
            else:
                cap = seconds
    if "max_ejected_percent" in fields:
        value = r.integer(fields["max_ejected_percent"], f"{where}.max_ejected_percent", minimum=0)
        if value is not None and value > 100:
            r.error(fields["max_ejected_percent"], f"{where}.max_ejected_percent", "at most 100")
            value = None
        ok = ok and value is not None
        percent = value if value is not None else percent
    if ok and cap < base:
        r.error(node, where, "max_ejection is shorter than base_ejection")
        ok = False
    if not ok:
        return None
    return Outlier(
        consecutive_failures=failures,
        base_ejection=base,
        max_ejection=cap,
        max_ejected_percent=percent,
    )


def _read_health(r: Reader, node: Node, where: str) -> HealthCheck | None:
    fields = HEALTH_CHECK.fields(r, node, where)
    if fields is None:
        return None
    values: dict[str, object] = {}
    ok = True
    if "path" in fields:
        path = r.string(fields["path"], f"{where}.path")
        if path is not None and not (path.startswith("/") and STATIC_PATH.fullmatch(path)):
            r.error(fields["path"], f"{where}.path", f"invalid path {path!r} (e.g. /healthz)")
            path = None
        ok = path is not None
        values["path"] = path
    for key in ("interval", "timeout"):
        if key in fields:
            values[key] = r.duration(fields[key], f"{where}.{key}")
            ok = ok and values[key] is not None
    for key in ("unhealthy", "healthy"):
        if key in fields:
            values[key] = r.integer(fields[key], f"{where}.{key}")
            ok = ok and values[key] is not None
    if not ok:
        return None
    check = HealthCheck(**values)  # type: ignore[arg-type]  # each read and checked above
    if check.timeout > check.interval:
        r.error(node, where, "timeout is longer than interval")
        return None
    return check


def _read_sticky(r: Reader, node: Node, where: str) -> str | None:
    value = r.string(node, where)
    if value is None:
        return None
    if value in ("client", "ip"):
        return value
    if value.startswith("header:"):
        name = r.header_name(Node(value[7:], node.line), where)
        return f"header:{name.lower()}" if name else None
    r.error(node, where, f"{value!r}: use client, ip or header:NAME")
    return None
