"""The balancer and passive health (gateway/upstream/targets.py)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from gateway.routes.model import Outlier, Target, Upstream
from gateway.upstream.attempts import UpstreamGuard
from gateway.upstream.targets import Balancer, Steer, TargetState


def upstream(*weights: int, **keys: object) -> Upstream:
    targets = tuple(Target(f"t{i}", f"h{i}", 80, w) for i, w in enumerate(weights))
    return Upstream(
        name="u",
        scheme="http",
        host="h0",
        port=80,
        base_path="",
        targets=targets,
        **keys,  # type: ignore[arg-type]
    )


def balancer(*weights: int, **keys: object) -> Balancer:
    return UpstreamGuard.for_upstream(upstream(*weights, **keys)).balancer


def out(state: TargetState) -> bool:
    """Ejected (a call, so that each check reads the state anew)."""
    return state.ejected


def takes_calls(state: TargetState) -> bool:
    return state.available


def shares(b: Balancer, n: int, steer: Steer | None = None) -> Counter[str]:
    return Counter(b.pick(steer).name for _ in range(n))


def test_least_request_follows_the_weights_when_idle() -> None:
    counts = shares(balancer(3, 1), 20_000)
    assert 0.72 < counts["t0"] / 20_000 < 0.78


def test_least_request_prefers_the_target_with_fewer_calls_in_flight() -> None:
    b = balancer(1, 1)
    b.states[0].in_flight = 5
    assert shares(b, 200) == Counter({"t1": 200})


def test_round_robin_is_smooth_and_exact() -> None:
    b = balancer(3, 1, balance="round_robin")
    picks = [b.pick().name for _ in range(8)]
    assert picks.count("t0") == 6 and picks.count("t1") == 2
    assert "t1" in picks[:4] and "t1" in picks[4:]  # spread, not 3 then 1 in a block


def test_a_weight_of_zero_takes_no_share() -> None:
    assert shares(balancer(1, 0), 2_000) == Counter({"t0": 2_000})


def test_retries_avoid_the_targets_already_tried() -> None:
    b = balancer(1, 1, 1)
    tried = {b.states[0], b.states[1]}
    assert {b.pick(None, tried).name for _ in range(50)} == {"t2"}
    everything = set(b.states)
    assert b.pick(None, everything) in everything  # none left: any may be retried


def test_sticky_keys_stay_and_a_weight_change_moves_only_clients_it_must() -> None:
    before = balancer(1, 1, sticky="header:x-user")
    after = balancer(1, 3, sticky="header:x-user")
    keys = [f"user-{i}".encode() for i in range(4_000)]
    first = {k: before.pick(Steer(k)).name for k in keys}
    assert all(before.pick(Steer(k)).name == first[k] for k in keys[:200])
    second = {k: after.pick(Steer(k)).name for k in keys}
    moved = [k for k in keys if first[k] != second[k]]
    assert all(first[k] == "t0" and second[k] == "t1" for k in moved)  # only towards t1
    # From 1/2 to 3/4 on t1: a quarter of all clients must move, and no more.
    assert 0.22 < len(moved) / len(keys) < 0.28


def test_a_named_target_wins_while_it_is_available() -> None:
    b = balancer(1, 0)
    assert b.pick(Steer(named="t1")).name == "t1"
    assert b.pick(Steer(named="nope")).name == "t0"


@pytest.fixture
def outlier_balancer() -> Balancer:
    outlier = Outlier(consecutive_failures=3, base_ejection=0.05, max_ejection=0.08)
    return balancer(1, 1, 1, outlier=outlier)


async def test_consecutive_failures_eject_for_a_growing_time(outlier_balancer: Balancer) -> None:
    b = outlier_balancer
    bad = b.states[0]
    for _ in range(2):
        b.record(bad, failed=True)
    b.record(bad, failed=False)  # a success resets the count
    for _ in range(2):
        b.record(bad, failed=True)
    assert not out(bad)
    b.record(bad, failed=True)
    assert out(bad) and bad.healthy_gauge._value.get() == 0
    assert "t0" not in shares(b, 300)
    await asyncio.sleep(0.07)
    assert not out(bad) and bad.healthy_gauge._value.get() == 1
    for _ in range(3):
        b.record(bad, failed=True)
    assert bad.ejections == 2
    await asyncio.sleep(0.06)
    assert out(bad)  # 2 x 50 ms, capped at 80 ms: still out
    await asyncio.sleep(0.04)
    assert not out(bad)


async def test_at_most_the_share_of_targets_and_never_the_last(
    outlier_balancer: Balancer,
) -> None:
    b = outlier_balancer
    for state in b.states:
        for _ in range(3):
            b.record(state, failed=True)
    assert sum(s.ejected for s in b.states) == 1  # 50% of 3 targets: one
    one = balancer(1, outlier=Outlier(consecutive_failures=1))
    one.record(one.states[0], failed=True)
    assert not one.states[0].ejected


def test_failing_checks_take_a_target_out_and_passing_ones_bring_it_back() -> None:
    b = balancer(1, 1)
    state: TargetState = b.states[0]
    state.checked(False, healthy=2, unhealthy=2)
    assert takes_calls(state)
    state.checked(False, healthy=2, unhealthy=2)
    assert not takes_calls(state) and "t0" not in shares(b, 200)
    state.checked(True, healthy=2, unhealthy=2)
    assert not takes_calls(state)
    state.checked(True, healthy=2, unhealthy=2)
    assert takes_calls(state)


def test_with_every_target_out_all_take_calls() -> None:
    b = balancer(1, 1)
    for state in b.states:
        for _ in range(3):
            state.checked(False, healthy=1, unhealthy=3)
    assert set(shares(b, 200)) == {"t0", "t1"}


def test_the_guard_reads_sticky_keys_and_the_override_header() -> None:
    guard = UpstreamGuard.for_upstream(upstream(1, 1, sticky="client", override_header="x-canary"))
    headers = [(b"x-canary", b"t1")]
    assert guard.steer("10.0.0.1", None, headers) == Steer(
        b"10.0.0.1", None
    )  # no auth: no override
    assert guard.steer("10.0.0.1", "keys/alice", headers) == Steer(b"keys/alice", "t1")
    by_header = UpstreamGuard.for_upstream(upstream(1, 1, sticky="header:x-user"))
    assert by_header.steer("ip", None, [(b"x-user", b"u1")]) == Steer(b"u1", None)
    assert UpstreamGuard.for_upstream(upstream(1, 1)).steer("ip", None, headers) is None
