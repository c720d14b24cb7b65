"""The `proxy:` route kind: one upstream, the path templated, streamed both ways."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.routes.kinds import KindReader, RouteContext, read_relay_path, read_upstream_ref
from gateway.routes.model import Proxy
from gateway.routes.reader import Reader
from gateway.routes.source import Node

__all__ = ["PROXY"]


def _read(r: Reader, fields: Mapping[str, Node], ctx: RouteContext) -> Proxy | None:
    where = f"{ctx.where}: proxy"
    node = fields["proxy"]
    proxy = r.mapping(
        node, where, allowed=("upstream", "path", "idle_timeout"), required=("upstream", "path")
    )
    if proxy is None or "upstream" not in proxy or "path" not in proxy:
        return None
    upstream = read_upstream_ref(r, proxy["upstream"], f"{where}.upstream", ctx.upstreams)
    template = read_relay_path(r, proxy["path"], f"{where}.path", ctx, kind="proxy")
    idle = None
    if "idle_timeout" in proxy:
        idle = r.duration(proxy["idle_timeout"], f"{where}.idle_timeout")
        if idle is None:
            return None
    if upstream is None or template is None:
        return None
    return Proxy(upstream=upstream, path=template, idle_timeout=idle)


PROXY = KindReader(
    name="proxy",
    key="proxy",
    methods=("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"),
    only_keys=(),
    read=_read,
)
