"""What outlives a routes table (gateway/runtime.py): clients, guards and
whatever policies keep, across reloads."""

from __future__ import annotations

from gateway.observe import metrics
from gateway.runtime import Runtime
from gateway.stores.limiter_memory import MemoryLimiter
from tests.conftest import table

ONE = table(
    """
    version: 1
    upstreams: {a: {url: "http://a"}, b: {url: "http://b", timeout: 2s}}
    routes: []
    """
)
TWO = table(  # `a` unchanged, `b` changed (its pool's size), `c` new
    """
    version: 1
    upstreams:
      a: {url: "http://a"}
      b: {url: "http://b", timeout: 2s, max_connections: 5}
      c: {url: "http://c"}
    routes: []
    """
)


async def test_guards_and_clients_are_kept_while_an_upstream_is_unchanged() -> None:
    runtime = Runtime(redis_url="", failure_mode="open")
    guards, clients = (
        runtime.guards_for(ONE.upstreams),
        runtime.clients.for_upstreams(ONE.upstreams),
    )
    again, reclients = (
        runtime.guards_for(TWO.upstreams),
        runtime.clients.for_upstreams(TWO.upstreams),
    )
    assert again["a"] is guards["a"] and again["b"] is not guards["b"]
    assert reclients["a"] is clients["a"] and reclients["b"] is not clients["b"]
    assert runtime.guard(TWO.upstreams["c"]) is again["c"]
    assert runtime.guard(ONE.upstreams["b"]) is None  # its old definition is forgotten
    runtime.retire_unused_clients(TWO.upstreams)  # the old `b` client: closed later
    assert clients["b"] in runtime._retired
    await runtime.aclose()
    assert clients["b"].is_closed and reclients["a"].is_closed


async def test_what_policies_keep_is_made_once_and_kept() -> None:
    runtime = Runtime(redis_url="", failure_mode="closed")
    made: list[int] = []

    def make(tag: int) -> object:
        made.append(tag)
        return object()

    first = runtime.keep(("jwks", "u"), lambda: make(1))
    assert runtime.keep(("jwks", "u"), lambda: make(2)) is first
    assert made == [1]
    client = runtime.own_client()
    assert runtime.own_client() is client
    assert runtime.fail_closed and isinstance(runtime.limiter, MemoryLimiter)
    assert await runtime.redis_ready()  # no Redis configured: nothing to wait for
    await runtime.aclose()
    assert client.is_closed


WEIGHTS = """
version: 1
upstreams:
  w:
    targets: [{url: "http://a1", weight: %d}, {url: "http://a2", weight: 1}]
    timeout: %s
routes: []
"""


async def test_a_weight_change_keeps_each_targets_state_and_the_pool() -> None:
    runtime = Runtime(redis_url="", failure_mode="open")
    before, after = table(WEIGHTS % (1, "2s")), table(WEIGHTS % (9, "3s"))
    clients = runtime.clients.for_upstreams(before.upstreams)
    old = runtime.guards_for(before.upstreams, clients)["w"]
    reclients = runtime.clients.for_upstreams(after.upstreams)
    new = runtime.guards_for(after.upstreams, reclients)["w"]
    assert new is not old  # new weights, a new balancer
    assert new.balancer.states == old.balancer.states  # the same targets' states
    assert [s.target.weight for s in new.balancer.states] == [9, 1]
    assert reclients["w"] is clients["w"]  # and their connections
    fewer = table(WEIGHTS.replace(', {url: "http://a2", weight: 1}', "") % (1, "2s"))
    runtime.guards_for(fewer.upstreams)
    series = {
        s.labels["target"]
        for m in metrics.UPSTREAM_TARGET_HEALTHY.collect()
        for s in m.samples
        if s.labels["upstream"] == "w"
    }
    assert series == {"a1:80"}  # the removed target's series is gone
    await runtime.aclose()
