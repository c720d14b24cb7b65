"""What the readers of route kinds share (gateway/routes/aggregate.py, proxy.py,
websocket.py): templates, references to upstreams, relayed paths."""

from __future__ import annotations

from collections.abc import Collection

from gateway.routes.model import FieldRef, ParamRef, Template
from gateway.routes.reader import Reader, did_you_mean
from gateway.routes.source import Node
from gateway.routes.templates import parse_template
from gateway.routes.vocabulary import RouteContext

__all__ = ["read_relay_path", "read_template", "read_upstream_ref"]


def read_template(r: Reader, node: Node, where: str, *, is_path: bool) -> Template | None:
    text = r.string(node, where, allow_empty=not is_path, coerce=not is_path)
    if text is None:
        return None
    template, problem = parse_template(text, is_path=is_path)
    if problem:
        r.error(node, where, problem)
    return template


def read_upstream_ref(r: Reader, node: Node, where: str, upstreams: Collection[str]) -> str | None:
    name = r.string(node, where)
    if name is not None and name not in upstreams:
        r.error(node, where, f"unknown upstream {name!r}" + did_you_mean(name, upstreams))
        return None
    return name


def read_relay_path(
    r: Reader, node: Node, where: str, ctx: RouteContext, *, kind: str
) -> Template | None:
    """The upstream path of a route that relays one request (proxy, websocket):
    the route's parameters and the client's query; there are no backend bodies."""
    template = read_template(r, node, where, is_path=True)
    if template is not None and ctx.params is not None:
        for ref in template.refs:
            if isinstance(ref, FieldRef):
                r.error(node, where, f"{kind} paths cannot use backend fields")
            elif isinstance(ref, ParamRef) and ref.name not in ctx.params:
                hint = did_you_mean(ref.name, ctx.params)
                r.error(node, where, f"unknown parameter {{{ref.name}}}{hint}")
    return template
