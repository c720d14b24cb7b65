"""The dashboard's live numbers (gateway/observe/live.py): counts by class,
percentiles from the buckets, requests in flight, the history, and routes a
reload removed."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.observe.live import HISTORY, Live


def gateway(*routes: str, upstreams: tuple[str, ...] = ()) -> Any:
    """A routes table with these routes and upstreams (what `tick` reads of one)."""
    return SimpleNamespace(
        routes=[SimpleNamespace(name=r) for r in routes], upstreams=dict.fromkeys(upstreams)
    )


def test_answers_are_counted_by_class() -> None:
    live = Live()
    for status in (200, 200, 404, 429, 500, 503):
        live.begin("r")
        live.end("r", status, 0.01)
    point = live.tick(gateway("r"))["routes"]["r"][1:5]
    assert point == (6, 1, 2, 1)  # requests, 4xx (not 429), 5xx, 429


@pytest.mark.parametrize("spread", [(0.001, 0.002), (0.005, 0.5), (0.0002, 3.0)])
def test_percentiles_are_within_the_buckets_precision(spread: tuple[float, float]) -> None:
    live = Live()
    rng = random.Random(7)
    samples = [rng.uniform(*spread) for _ in range(5000)]
    for seconds in samples:
        live.begin("r")
        live.end("r", 200, seconds)
    live.tick(gateway("r"))
    summary = live.routes["r"].summary()
    samples.sort()
    for key, fraction in (("p50", 0.5), ("p99", 0.99)):
        exact = samples[int(fraction * len(samples)) - 1] * 1000
        assert summary[key] == pytest.approx(exact, rel=0.07), key


def test_in_flight_counts_requests_until_they_end() -> None:
    live = Live()
    live.begin("r")
    live.begin("r")
    live.end("r", 200, 0.1)
    assert live.tick(gateway("r"))["routes"]["r"][7] == 1
    live.end("r", 499, 0.0, counted=False)  # abandoned: not an answer
    point = live.tick(gateway("r"))["routes"]["r"]
    assert point[7] == 0 and point[1] == 0


def test_the_history_keeps_five_minutes_and_headlines_the_last_seconds() -> None:
    live = Live()
    for _ in range(HISTORY + 20):
        live.begin("r")
        live.end("r", 200, 0.01)
        live.tick(gateway("r"))
    assert len(live.routes["r"].history) == HISTORY
    assert live.routes["r"].summary()["rps"] == 1.0


def test_a_reload_forgets_removed_routes_and_upstreams_once_idle() -> None:
    live = Live()
    live.begin("old")
    live.call("gone", failed=True)
    live.tick(gateway("new", upstreams=("kept",)))
    assert "old" in live.routes  # still in flight
    assert set(live.upstreams) == {"kept"}
    live.end("old", 200, 0.01)
    live.tick(gateway("new", upstreams=("kept",)))
    assert set(live.routes) == {"new", ""}


def test_reloads_are_remembered_newest_last() -> None:
    live = Live()
    live.loaded("routes.yaml", b"\x01" * 32, 3, reload=False)
    assert not live.reloads and live.config.digest == "01" * 32
    live.refused("refused", ["routes.yaml:4: bad"])
    live.loaded("routes.yaml", b"\x02" * 32, 4, reload=True)
    assert [r["result"] for r in live.reloads] == ["refused", "loaded"]
    assert live.reloads[0]["errors"] == ["routes.yaml:4: bad"]


def test_quiet_routes_share_one_point_per_second() -> None:
    live = Live()
    names = [f"r{i}" for i in range(1000)]
    for _ in range(50):
        live.tick(gateway(*names))
    points = {id(p) for name in names for p in live.routes[name].history}
    assert len(points) == 1  # 50,000 seconds of history, one tuple
    assert live.points(live.routes["r0"].history, 2) == [
        [live.second - 1, 0, 0, 0, 0, None, None, 0],
        [live.second, 0, 0, 0, 0, None, None, 0],
    ]
