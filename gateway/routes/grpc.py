"""The `grpc:` route kind (SPEC 3.18): the calls of one gRPC service, relayed
to an upstream over HTTP/2.

    - name: users-rpc
      grpc: {upstream: users-grpc, service: users.v1.Users}
      # path: /users.v1.Users/{method}     (the default)
      # methods: [POST]                    (the default; gRPC calls are POSTs)

The upstream's `url` says how it is spoken to: `http://` is h2c (HTTP/2
with prior knowledge), `https://` is h2 over TLS (ALPN) with its `tls:`.
A route whose `path` names one method (`/users.v1.Users/GetUser`) gives that
method policies of its own; the longest literal path wins, as for any route.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from gateway.routes.keys import NAME, Key, Section, Value
from gateway.routes.kinds import read_upstream_ref
from gateway.routes.model import Grpc
from gateway.routes.reader import Reader
from gateway.routes.source import Node
from gateway.routes.vocabulary import KindReader, RouteContext

__all__ = ["GRPC", "SERVICE"]

# A protobuf full name: package parts and the service, dot-separated.
SERVICE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")

GRPC_SECTION = Section(
    (
        Key(name="upstream", value=NAME, required=True, example="u"),
        Key(
            name="service",
            value=Value(
                {"type": "string", "pattern": "^" + SERVICE.pattern + "$"},
                "users.v1.Users",
                "not a/service",
            ),
            required=True,
        ),
    )
)


def _service(fields: Mapping[str, Node]) -> str | None:
    node = fields["grpc"]
    if not isinstance(node.value, dict):
        return None
    service = node.value.get("service")
    text = service.value if isinstance(service, Node) else None
    return text if isinstance(text, str) and SERVICE.fullmatch(text) else None


def _default_path(fields: Mapping[str, Node]) -> str | None:
    service = _service(fields)
    return None if service is None else f"/{service}/{{method}}"


def _read(r: Reader, fields: Mapping[str, Node], ctx: RouteContext) -> Grpc | None:
    where = f"{ctx.where}: grpc"
    found = GRPC_SECTION.fields(r, fields["grpc"], where)
    if found is None or "upstream" not in found or "service" not in found:
        return None
    upstream = read_upstream_ref(r, found["upstream"], f"{where}.upstream", ctx.upstreams)
    service = r.string(found["service"], f"{where}.service")
    if service is not None and not SERVICE.fullmatch(service):
        r.error(
            found["service"], f"{where}.service", "must be a service's full name: package.Service"
        )
        return None
    if upstream is None or service is None:
        return None
    return Grpc(upstream=upstream, service=service)


GRPC = KindReader(
    name="grpc",
    keys=(Key(name="grpc", value=GRPC_SECTION),),
    methods=("POST",),
    read=_read,
    default_methods=frozenset({"POST"}),
    default_path=_default_path,
)
