"""The `websocket:` route kind: a client's WebSocket relayed to one upstream
WebSocket (SPEC 3.11). Served on GET only (the handshake)."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.routes.kinds import KindReader, RouteContext, read_relay_path, read_upstream_ref
from gateway.routes.model import WebSocket
from gateway.routes.reader import HEADER_NAME, Reader
from gateway.routes.source import Node

__all__ = ["WEBSOCKET"]

_KEYS = ("upstream", "path", "subprotocols", "max_message_size", "idle_timeout")


def _read(r: Reader, fields: Mapping[str, Node], ctx: RouteContext) -> WebSocket | None:
    where = f"{ctx.where}: websocket"
    spec = r.mapping(fields["websocket"], where, allowed=_KEYS, required=("upstream", "path"))
    if spec is None or "upstream" not in spec or "path" not in spec:
        return None
    upstream = read_upstream_ref(r, spec["upstream"], f"{where}.upstream", ctx.upstreams)
    template = read_relay_path(r, spec["path"], f"{where}.path", ctx, kind="websocket")
    subprotocols: tuple[str, ...] | None = None
    if "subprotocols" in spec:
        names = r.strings(spec["subprotocols"], f"{where}.subprotocols")
        if names is None:
            return None
        for name in names:
            if not HEADER_NAME.fullmatch(name):
                r.error(spec["subprotocols"], f"{where}.subprotocols", f"invalid name {name!r}")
        subprotocols = tuple(names)
    max_size, idle = 1024 * 1024, 300.0
    if "max_message_size" in spec:
        max_size = r.size(spec["max_message_size"], f"{where}.max_message_size") or max_size
    if "idle_timeout" in spec:
        idle = r.duration(spec["idle_timeout"], f"{where}.idle_timeout") or idle
    if upstream is None or template is None:
        return None
    return WebSocket(
        upstream=upstream,
        path=template,
        subprotocols=subprotocols,
        max_message_size=max_size,
        idle_timeout=idle,
    )


WEBSOCKET = KindReader(
    name="websocket",
    key="websocket",
    methods=("GET",),
    only_keys=(),
    read=_read,
)
