"""The `proxy:` route kind: one upstream, the path templated, streamed both ways."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.routes.keys import DURATION, NAME, STRING, Key, Section
from gateway.routes.kinds import read_relay_path, read_upstream_ref
from gateway.routes.mirror import MIRROR_KEY, read_mirror
from gateway.routes.model import Proxy
from gateway.routes.reader import Reader
from gateway.routes.source import Node
from gateway.routes.vocabulary import KindReader, RouteContext

__all__ = ["PROXY"]

PROXY_SECTION = Section(
    (
        Key(name="upstream", value=NAME, required=True, example="u"),
        Key(name="path", value=STRING, required=True, example="/p", wrong=["/p"]),
        Key(name="idle_timeout", value=DURATION),
    )
)


def _read(r: Reader, fields: Mapping[str, Node], ctx: RouteContext) -> Proxy | None:
    where = f"{ctx.where}: proxy"
    node = fields["proxy"]
    proxy = PROXY_SECTION.fields(r, node, where)
    if proxy is None or "upstream" not in proxy or "path" not in proxy:
        return None
    upstream = read_upstream_ref(r, proxy["upstream"], f"{where}.upstream", ctx.upstreams)
    template = read_relay_path(r, proxy["path"], f"{where}.path", ctx, kind="proxy")
    idle = None
    if "idle_timeout" in proxy:
        idle = r.duration(proxy["idle_timeout"], f"{where}.idle_timeout")
        if idle is None:
            return None
    mirror = read_mirror(r, fields, ctx)
    if upstream is None or template is None or ("mirror" in fields and mirror is None):
        return None
    return Proxy(upstream=upstream, path=template, idle_timeout=idle, mirror=mirror)


PROXY = KindReader(
    name="proxy",
    keys=(Key(name="proxy", value=PROXY_SECTION), MIRROR_KEY),
    methods=("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"),
    read=_read,
)
