"""The request hooks' stage (gateway/pipeline/hooks.py): hooks in order
(global ones first), each timed, under the route's deadline; what they set
goes with every upstream call; a rejection or a failure is the route's."""

from __future__ import annotations

import logging

import pytest

from gateway.envelope import Caller
from gateway.errors import DeadlinePassed, HookFailed, HookRejected
from gateway.observe.metrics import HOOK_DURATIONS
from gateway.pipeline.hooks import request_hooks_stage
from tests.calls import context, handshake_call, http_call, ok
from tests.conftest import table
from tests.fixtures import hooks

ROUTES = table(
    """
    version: 1
    upstreams: {u: {url: "http://u"}}
    hooks: {request: ["tests.fixtures.hooks:tenant"]}
    routes:
      - {name: two, path: /t, hooks: {request: ["tests.fixtures.hooks:second"]}, backends: [{upstream: u, path: /x}]}
      - {name: rejects, path: /r, hooks: {request: ["tests.fixtures.hooks:reject"]}, proxy: {upstream: u, path: /x}}
      - {name: broken, path: /b, hooks: {request: ["tests.fixtures.hooks:broken"]}, websocket: {upstream: u, path: /x}}
      - {name: slow, path: /s, timeout: 50ms, hooks: {request: ["tests.fixtures.hooks:slow"]}, backends: [{upstream: u, path: /x}]}
    """
)
TWO, REJECTS, BROKEN, SLOW = ROUTES.routes
CONTEXT = context(ROUTES)


def stage_of(route: object) -> object:
    built = request_hooks_stage(route, CONTEXT)  # type: ignore[arg-type]
    assert built is not None
    return built


async def test_global_hooks_run_first_and_their_edits_go_upstream() -> None:
    hooks.CALLED.clear()
    call = http_call(TWO, headers={"Cookie": "c"}, caller=Caller("alice", "keys"))
    await stage_of(TWO)(ok)(call)  # type: ignore[operator]
    assert hooks.CALLED == ["tenant:alice", "second"]
    hooked = call.envelope.hooked
    assert hooked is not None and hooked.edits is not None
    assert hooked.edits.set == ((b"x-tenant", b"acme"),)
    assert hooked.edits.removed == frozenset({b"cookie"})
    assert [(h.name, h.stage) for h in hooked.log] == [
        ("tests.fixtures.hooks:tenant", "request"),
        ("tests.fixtures.hooks:second", "request"),
    ]
    assert "+reached" in call.envelope.request_id
    assert "tests.fixtures.hooks:second" in HOOK_DURATIONS.series  # the metric


async def test_a_rejection_answers_the_hooks_status() -> None:
    with pytest.raises(HookRejected) as rejected:
        await stage_of(REJECTS)(ok)(http_call(REJECTS))  # type: ignore[operator]
    assert (rejected.value.status, rejected.value.detail) == (451, "not here")


async def test_a_hook_that_raises_is_a_500_naming_it_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="gateway"), pytest.raises(HookFailed) as failed:
        await stage_of(BROKEN)(ok)(handshake_call(BROKEN))  # type: ignore[operator]
    assert "tests.fixtures.hooks:broken" in failed.value.detail
    logged = [r for r in caplog.records if "failed in route broken" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None


async def test_the_route_deadline_bounds_the_hooks() -> None:
    with pytest.raises(DeadlinePassed, match=r"tests\.fixtures\.hooks:slow"):
        await stage_of(SLOW)(ok)(http_call(SLOW))  # type: ignore[operator]


def test_a_route_without_request_hooks_has_no_such_stage() -> None:
    bare = table(
        """
        version: 1
        upstreams: {u: {url: "http://u"}}
        routes: [{name: r, path: /r, backends: [{upstream: u, path: /x}]}]
        """
    )
    assert request_hooks_stage(bare.routes[0], context(bare)) is None
