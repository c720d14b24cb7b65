"""A policy in one module (the README's "Where to add things", where this
file is shown whole): a route may name a header every request to it must
carry; without it the gateway answers 400 before anything else of the route
runs.

    routes:
      - name: tenants
        path: /tenants/{id}
        require_header: X-Tenant
        backends: [...]

Registered with one line in gateway/registry.py's POLICIES, where its stage
runs: the routes file's reader and JSON Schema and every route's stack then
know it. tests/test_registry.py registers it so and runs it.
"""

from collections.abc import Mapping

from gateway.envelope import RouteCall
from gateway.errors import BadRequest
from gateway.routes.keys import HEADER, Key
from gateway.routes.model import Route
from gateway.routes.reader import Reader
from gateway.routes.source import Node
from gateway.routes.vocabulary import Option, RouteContext
from gateway.stack import Answer, BuildContext, Policy, RouteHandler, RouteStage


def _read(r: Reader, fields: Mapping[str, Node], ctx: RouteContext) -> str | None:
    return r.header_name(fields["require_header"], ctx.at("require_header"))


OPTION = Option[str](
    name="require_header", keys=(Key(name="require_header", value=HEADER),), read=_read
)


def require_header_stage(route: Route, context: BuildContext) -> RouteStage | None:
    name = OPTION.of(route)
    if name is None:
        return None  # not in this route's stack
    wanted = name.encode()

    def stage(inner: RouteHandler) -> RouteHandler:
        async def handler(call: RouteCall) -> Answer:
            if not any(header == wanted for header, _ in call.scope["headers"]):
                raise BadRequest(f"the {name} header is required")
            return await inner(call)

        return handler

    return stage


POLICY = Policy(name="require_header", option=OPTION, stage=require_header_stage)
