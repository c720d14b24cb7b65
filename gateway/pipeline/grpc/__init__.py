"""The `grpc` route kind (SPEC 3.18): gRPC and gRPC-Web calls relayed to an
upstream over HTTP/2. handler.py relays a call; response.py answers the
gateway's refusals as gRPC statuses; web.py translates gRPC-Web; status.py
maps statuses and reads `grpc-timeout`."""

from __future__ import annotations

from gateway.pipeline.grpc.handler import GrpcHandler
from gateway.pipeline.grpc.response import answering_errors
from gateway.routes.grpc import GRPC
from gateway.routes.model import Grpc, Route
from gateway.routes.openapi import Description
from gateway.stack import Kind

__all__ = ["KIND"]


def describe(route: Route, description: Description) -> None:
    """gRPC calls are not HTTP operations: listed beside them."""
    spec = route.kind
    assert isinstance(spec, Grpc)
    description.listing["grpc"] = {"service": spec.service, "upstream": spec.upstream}


KIND = Kind(
    reader=GRPC,
    build=GrpcHandler,
    describe=describe,
    operations=False,
    answer_errors=answering_errors,
)
