"""What the edge refused while it read the request (more than 1,000 query
fields, a body over the route's `max_body_size` or too slow): answered by
this stage of every route, after CORS, auth and the rate limit (as for any
request, the client is told who may call first, and it counts), before the
request hooks and the route's kind."""

from __future__ import annotations

from gateway.envelope import RouteCall
from gateway.routes.model import Route
from gateway.stack import Answer, BuildContext, Policy, RouteHandler, RouteStage

__all__ = ["POLICY"]


def refusals_stage(route: Route, context: BuildContext) -> RouteStage:
    def stage(inner: RouteHandler) -> RouteHandler:
        async def handler(call: RouteCall) -> Answer:
            if (refused := call.envelope.refused) is not None:
                raise refused
            return await inner(call)

        return handler

    return stage


POLICY = Policy(name="refusals", stage=refusals_stage)
