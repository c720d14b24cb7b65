"""The `websocket:` route kind: a client's WebSocket relayed to one upstream
WebSocket (SPEC 3.11). Served on GET only (the handshake)."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.routes.keys import DURATION, HEADERS, NAME, SIZE, STRING, Key, Section
from gateway.routes.kinds import read_relay_path, read_upstream_ref
from gateway.routes.model import WebSocket
from gateway.routes.reader import HEADER_NAME, Reader
from gateway.routes.source import Node
from gateway.routes.vocabulary import KindReader, RouteContext

__all__ = ["WEBSOCKET"]

WEBSOCKET_SECTION = Section(
    (
        Key(name="upstream", value=NAME, required=True, example="u"),
        Key(name="path", value=STRING, required=True, example="/ws", wrong=["/ws"]),
        Key(name="subprotocols", value=HEADERS, example=["chat.v1"]),
        Key(name="max_message_size", value=SIZE),
        Key(name="idle_timeout", value=DURATION),
    )
)


def _read(r: Reader, fields: Mapping[str, Node], ctx: RouteContext) -> WebSocket | None:
    where = f"{ctx.where}: websocket"
    spec = WEBSOCKET_SECTION.fields(r, fields["websocket"], where)
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
    keys=(Key(name="websocket", value=WEBSOCKET_SECTION),),
    methods=("GET",),
    read=_read,
)
