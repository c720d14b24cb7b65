"""The registry (gateway/registry.py): each route's stack composed once, in
the registered order, with only the stages the route uses; everything else
generated from the same lists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from gateway import registry
from gateway.envelope import RouteCall
from gateway.errors import BadRequest, Unauthorized
from gateway.registry import POLICIES, VOCABULARY, build_route_handler, kind_of, route_summary
from gateway.routes.model import Route
from gateway.stack import Answer, BuildContext, RouteHandler, RouteStage
from tests.calls import context, http_call
from tests.conftest import table

ROUTES = table(
    """
    version: 1
    upstreams: {u: {url: "http://u"}}
    auth: {keys: {type: api_key, keys: [{id: a, key: k}]}}
    hooks: {request: ["gateway.hooks.testing:noop"]}
    routes:
      - {name: full, path: /f, cors: {allow_origins: ["*"]}, auth: keys, rate_limit: {limit: 1, window: 1s}, backends: [{upstream: u, path: /x}]}
      - {name: bare, path: /b, proxy: {upstream: u, path: /x}}
      - {name: socket, path: /s, websocket: {upstream: u, path: /x}}
    """
)
FULL, BARE, SOCKET = ROUTES.routes
# The order SPEC 3.16 gives the request policies (refusals: what the edge
# refused while reading the body, answered after the policies).
ORDER = ("cors", "ip", "auth", "plan", "rate_limit", "quota", "refusals", "validate", "hooks")


def test_the_order_is_the_contracts() -> None:
    assert [p.name for p in POLICIES] == list(ORDER)
    # compress outermost; mirror innermost: it fires once the kind has answered
    assert [p.name for p in registry.AROUND_KIND] == ["compress", "validate-response", "mirror"]
    assert [k.name for k in registry.KINDS] == ["aggregate", "proxy", "websocket", "static", "grpc"]
    assert kind_of(SOCKET).handshakes and not kind_of(FULL).handshakes


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every registered stage and kind replaced by one that records its name."""
    trail: list[str] = []

    def recording(
        name: str, applies: bool = True
    ) -> Callable[[Route, BuildContext], RouteStage | None]:
        def build(route: Route, built: BuildContext) -> RouteStage | None:
            if not applies and name == "cors" and route is not FULL:
                return None

            def stage(inner: RouteHandler) -> RouteHandler:
                async def handler(call: RouteCall) -> Answer:
                    trail.append(name)
                    return await inner(call)

                return handler

            return stage

        return build

    policies = tuple(replace(p, stage=recording(p.name, applies=False)) for p in POLICIES)

    async def kind(call: RouteCall) -> Answer:
        trail.append("kind")
        return None

    kinds = tuple(replace(k, build=lambda route, built: kind) for k in registry.KINDS)
    monkeypatch.setattr(registry, "POLICIES", policies)
    monkeypatch.setattr(registry, "KINDS", kinds)
    return trail


async def test_a_routes_stack_runs_top_to_bottom_then_its_kind(traced: list[str]) -> None:
    handler = build_route_handler(FULL, context(ROUTES))
    await handler(http_call(FULL))
    assert traced == [*ORDER, "kind"]


async def test_a_stage_a_route_does_not_use_is_not_in_its_stack(traced: list[str]) -> None:
    await build_route_handler(BARE, context(ROUTES))(http_call(BARE))
    assert "cors" not in traced and traced[-1] == "kind"


def test_the_real_stacks_leave_out_what_a_route_does_not_use() -> None:
    built = context(ROUTES)
    used = {
        route.name: [p.name for p in POLICIES if p.stage(route, built) is not None]
        for route in ROUTES.routes
    }
    assert used["full"] == ["cors", "auth", "rate_limit", "refusals", "hooks"]
    assert used["bare"] == ["refusals", "hooks"]  # the global request hook
    plain = replace(ROUTES, hooks=replace(ROUTES.hooks, request=()))
    assert [p.name for p in POLICIES if p.stage(BARE, context(plain)) is not None] == ["refusals"]


def test_the_vocabulary_is_every_registered_option_and_kind() -> None:
    assert [o.name for o in VOCABULARY.options] == [
        "cors",
        "ip",
        "auth",
        "plans",
        "rate_limit",
        "validate",
        "compress",
    ]
    assert [k.key for k in VOCABULARY.kinds] == ["backends", "proxy", "websocket", "static", "grpc"]
    assert [o.name for o in VOCABULARY.settings_options] == ["cors", "ip", "validate", "compress"]
    assert [o.name for o in VOCABULARY.settings_only] == ["plans"]  # settings.default_plan
    assert [s.key for s in VOCABULARY.top_sections] == ["auth", "plans"]


def test_the_schema_is_generated_from_the_registry() -> None:
    schema = registry.routes_schema()
    branches = schema["properties"]["routes"]["items"]["oneOf"]
    for branch, kind in zip(branches, registry.KINDS, strict=True):
        assert kind.reader.key in branch["required"]
        for option in VOCABULARY.options:
            assert set(option.names) <= set(branch["properties"])
    assert "cors" in schema["properties"]["settings"]["properties"]


async def test_a_policy_is_one_module_and_one_registration_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The README's worked example (examples/policies/require_header.py),
    registered as the README says: the file, the schema, the stack and the
    dashboard all know it."""
    from examples.policies import require_header

    after_auth = [p.name for p in POLICIES].index("auth") + 1
    policies = (*POLICIES[:after_auth], require_header.POLICY, *POLICIES[after_auth:])
    monkeypatch.setattr(registry, "POLICIES", policies)
    monkeypatch.setattr(
        registry,
        "VOCABULARY",
        replace(VOCABULARY, options=tuple(p.option for p in policies if p.option is not None)),
    )
    routes = registry.parse_route_table(
        """
version: 1
upstreams: {u: {url: "http://u"}}
routes: [{name: r, path: /r, require_header: X-Tenant, auth: keys, backends: [{upstream: u, path: /x}]}]
auth: {keys: {type: api_key, keys: [{id: a, key: k}]}}
"""
    )
    route = routes.routes[0]
    assert require_header.OPTION.of(route) == "x-tenant"
    assert (
        "require_header"
        in registry.routes_schema()["properties"]["routes"]["items"]["oneOf"][0]["properties"]
    )
    handler = build_route_handler(route, context(routes))
    with pytest.raises(BadRequest, match="the x-tenant header is required"):
        await handler(http_call(route, headers={"X-Api-Key": "k"}))
    with pytest.raises(Unauthorized):  # auth runs first
        await handler(http_call(route))


def test_the_dashboard_says_what_each_route_uses() -> None:
    assert route_summary(FULL) == [
        "cors: *",
        "auth: keys",
        "rate limit: 1 per 1 s (burst 1) by client",
    ]
    assert route_summary(BARE) == []


def test_the_readme_shows_the_example_policy_as_it_is() -> None:
    """The README's worked example is examples/policies/require_header.py (its
    docstring aside), so what the README shows is what the test above runs."""
    import re

    from tests.processes import ROOT

    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n(\"\"\"`require_header.*?)```", readme, re.DOTALL)
    assert block is not None
    shown = block.group(1).split("\n", 1)[1]  # without its one-line docstring
    module = (ROOT / "examples" / "policies" / "require_header.py").read_text()
    assert module.endswith(shown)
