"""The dashboard's colours, decided here and only here (the page only paints
what the stream says; README "Observability" prints `LEGEND`, and a test
holds the two to each other).

Every number on a card may be ok, `warn` (amber) or `fail` (red); a card
takes the worst of its numbers, and is grey while nothing happens on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["LEGEND", "card_level", "route_levels", "totals_levels", "upstream_levels"]

# (what, amber when, red when): the rules below, in words.
LEGEND: tuple[tuple[str, str, str], ...] = (
    ("5xx answers", "any in the last 10 s", "5% or more of the route's requests"),
    ("429 answers", "10% or more of the route's requests", "never: a limit doing its work"),
    ("other 4xx answers", "half or more of the route's requests", "never: the clients' doing"),
    ("p99 latency", "past half the route's timeout", "past 80% of it"),
    ("an upstream's circuit", "half-open (one trial call)", "open"),
    ("an upstream's failures", "under 20% of its calls", "20% or more of them"),
)


def route_levels(numbers: Mapping[str, Any], timeout_ms: int | None) -> dict[str, str]:
    """Per metric of a route's (or the totals') headline numbers."""
    levels: dict[str, str] = {}
    rps = numbers["rps"]
    if rps <= 0:
        return levels
    if numbers["r5xx"] > 0:
        levels["r5xx"] = "fail" if numbers["r5xx"] / rps >= 0.05 else "warn"
    if numbers["r429"] / rps >= 0.1:
        levels["r429"] = "warn"
    if numbers["r4xx"] / rps >= 0.5:
        levels["r4xx"] = "warn"
    p99 = numbers["p99"]
    if p99 is not None and timeout_ms:
        if p99 >= 0.8 * timeout_ms:
            levels["p99"] = "fail"
        elif p99 >= 0.5 * timeout_ms:
            levels["p99"] = "warn"
    return levels


def totals_levels(numbers: Mapping[str, Any]) -> dict[str, str]:
    """The totals row: the error rules (latency has no one timeout to judge by)."""
    return route_levels(numbers, None)


def upstream_levels(numbers: Mapping[str, Any], circuit: str) -> dict[str, str]:
    levels: dict[str, str] = {}
    if numbers["fps"] > 0:
        calls = numbers["cps"]
        levels["fps"] = "warn" if calls > 0 and numbers["fps"] / calls < 0.2 else "fail"
    if circuit == "open":
        levels["circuit"] = "fail"
    elif circuit == "half-open":
        levels["circuit"] = "warn"
    return levels


def card_level(levels: Mapping[str, str], *, busy: bool) -> str:
    """The card's colour: its worst number's, or idle (grey) when quiet."""
    if "fail" in levels.values():
        return "fail"
    if "warn" in levels.values():
        return "warn"
    return "ok" if busy else "idle"
