"""The `proxy:` route kind: one upstream, the path templated, streamed both ways."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.routes.kinds import KindReader, RouteContext, read_template, read_upstream_ref
from gateway.routes.model import FieldRef, ParamRef, Proxy
from gateway.routes.reader import Reader
from gateway.routes.source import Node

__all__ = ["PROXY"]


def _read(r: Reader, fields: Mapping[str, Node], ctx: RouteContext) -> Proxy | None:
    where = f"{ctx.where}: proxy"
    node = fields["proxy"]
    proxy = r.mapping(node, where, allowed=("upstream", "path"), required=("upstream", "path"))
    if proxy is None or "upstream" not in proxy or "path" not in proxy:
        return None
    upstream = read_upstream_ref(r, proxy["upstream"], f"{where}.upstream", ctx.upstreams)
    template = read_template(r, proxy["path"], f"{where}.path", is_path=True)
    if template is not None and ctx.params is not None:
        for ref in template.refs:
            if isinstance(ref, FieldRef):
                r.error(proxy["path"], f"{where}.path", "proxy paths cannot use backend fields")
            elif isinstance(ref, ParamRef) and ref.name not in ctx.params:
                r.error(proxy["path"], f"{where}.path", f"unknown parameter {{{ref.name}}}")
    if upstream is None or template is None:
        return None
    return Proxy(upstream=upstream, path=template)


PROXY = KindReader(
    name="proxy",
    key="proxy",
    methods=("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"),
    only_keys=(),
    read=_read,
)
