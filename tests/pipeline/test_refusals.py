"""What the edge refused, answered by the route's stack (gateway/pipeline/refusals.py)."""

from __future__ import annotations

import pytest

from gateway.errors import PayloadTooLarge
from gateway.pipeline.refusals import refusals_stage
from tests.calls import context, http_call, ok
from tests.conftest import table

ROUTES = table(
    """
    version: 1
    upstreams: {u: {url: "http://u"}}
    routes: [{name: r, path: /r, backends: [{upstream: u, path: /x}]}]
    """
)


async def test_a_refusal_of_the_edge_is_raised_here_and_goes_no_further() -> None:
    handler = refusals_stage(ROUTES.routes[0], context(ROUTES))(ok)
    refused = http_call(ROUTES.routes[0], refused=PayloadTooLarge("too large"))
    with pytest.raises(PayloadTooLarge):
        await handler(refused)
    assert "+reached" not in refused.envelope.request_id
    fine = http_call(ROUTES.routes[0])
    await handler(fine)
    assert "+reached" in fine.envelope.request_id
