"""The `static` route kind's handler: the answer the routes file wrote
(gateway/routes/static.py), with every policy of the route's stack in front
of it and no upstream behind it."""

from __future__ import annotations

from django.http import HttpResponse

from gateway.envelope import RouteCall
from gateway.routes.model import Route
from gateway.routes.openapi import Description
from gateway.routes.static import STATIC, Static
from gateway.stack import BuildContext, Kind, RouteHandler

__all__ = ["KIND", "build_static"]


def build_static(route: Route, context: BuildContext) -> RouteHandler:
    spec = route.kind
    assert isinstance(spec, Static)
    length = str(len(spec.body))

    async def handler(call: RouteCall) -> HttpResponse:
        response = HttpResponse(spec.body, status=spec.status, content_type=spec.content_type)
        if spec.status not in (204, 304):
            response.headers["Content-Length"] = length
        for name, value in spec.headers:
            response.headers[name] = value
        return response

    return handler


def describe(route: Route, description: Description) -> None:
    spec = route.kind
    assert isinstance(spec, Static)
    description.ok["description"] = "The answer the routes file wrote"
    if spec.body:
        description.ok_content[spec.content_type.split(";")[0]] = {"schema": {}}
    if spec.status != 200:
        description.responses[str(spec.status)] = {
            "description": "The answer the routes file wrote"
        }
    for status in (502, 503, 504):  # no upstream: nothing of the kind can fail that way
        description.refusals.pop(status, None)


KIND = Kind(reader=STATIC, build=build_static, describe=describe)
