"""The `grpc:` route kind in the routes file (gateway/routes/grpc.py)."""

from __future__ import annotations

import pytest

from gateway.registry import parse_route_table
from gateway.routes import RoutesFileError
from gateway.routes.model import Grpc

HEAD = """
version: 1
upstreams:
  rpc: {url: "http://127.0.0.1:9", timeout: 1s}
routes:
"""


def test_the_path_and_methods_default_from_the_service() -> None:
    table = parse_route_table(HEAD + "  - {name: r, grpc: {upstream: rpc, service: a.v1.Users}}\n")
    route = table.routes[0]
    assert route.path == "/a.v1.Users/{method}"
    assert route.methods == frozenset({"POST"})
    assert route.kind == Grpc(upstream="rpc", service="a.v1.Users")


def test_a_path_of_its_own() -> None:
    text = HEAD + "  - {name: r, path: /a.Users/Get, grpc: {upstream: rpc, service: a.Users}}\n"
    assert parse_route_table(text).routes[0].path == "/a.Users/Get"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{name: r, grpc: {upstream: rpc, service: 'not a/service'}}", "package.Service"),
        ("{name: r, grpc: {upstream: nope, service: a.B}}", "unknown upstream 'nope'"),
        ("{name: r, grpc: {service: a.B}}", "upstream"),
        ("{name: r, methods: [GET], grpc: {upstream: rpc, service: a.B}}", "unsupported method"),
        ("{name: r, backends: [{upstream: rpc, path: /x}]}", "path"),
    ],
)
def test_errors_name_the_line(entry: str, message: str) -> None:
    with pytest.raises(RoutesFileError) as raised:
        parse_route_table(HEAD + f"  - {entry}\n", "routes.yaml")
    text = "\n".join(raised.value.lines())
    assert message in text and "routes.yaml:6" in text
