"""The dashboard's data (SPEC 3.14): documents for its one SSE stream.

`Feed.tick()` runs once a second (the lifespan's housekeeping): it folds the
second into gateway/observe/live.py's history and hands every open stream an
update. A stream starts with a `snapshot` event (the whole five-minute history,
so the charts are full at once), then gets a `tick` event every second: the
new point of each chart, the headline numbers, circuit states, the config and
its recent reloads. A dashboard that cannot keep up (five updates behind) is
cut off; it reconnects and starts from a snapshot.

Colours are decided here (gateway/observe/levels.py) and sent with the
numbers: the page paints what it is told. Besides routes and upstreams, a
document holds the totals across routes, each route's error answers by
status, the last error answers with their request ids (to find their
access-log lines), and whether the file on disk is the one serving.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from gateway import serving
from gateway.lifecycle import lifecycle
from gateway.observe.levels import (
    LEGEND,
    card_level,
    route_levels,
    totals_levels,
    upstream_levels,
)
from gateway.observe.live import (
    HISTORY,
    LIVE,
    RECENT_ERRORS,
    UNROUTED,
    WINDOW,
    RouteLive,
    UpstreamLive,
    merged_percentiles,
)
from gateway.observe.logs import utc_timestamp
from gateway.registry import PANELS, route_summary
from gateway.stack import Panel

if TYPE_CHECKING:
    from gateway.assembly import Gateway
    from gateway.routes.model import Route, Upstream

__all__ = ["FEED", "Feed", "dashboard_page", "document"]

_BEHIND = 5  # updates a stream may lag before it is cut off


def _circuit(gateway: Gateway, name: str) -> str:
    upstream = gateway.table.upstreams[name]
    guard = gateway.runtime.guard(upstream)
    breaker = guard.breaker if guard is not None else None
    if breaker is None:
        return "none"
    if breaker.opened_at is None:
        return "closed"
    return "half-open" if breaker.trial_in_flight else "open"


def _route(name: str, route: Route | None, live: RouteLive, *, history: bool) -> dict[str, Any]:
    timeout_ms = round(route.timeout * 1000) if route is not None else None
    numbers = live.summary()
    levels = route_levels(numbers, timeout_ms)
    entry: dict[str, Any] = {
        "name": name or "(no route)",
        "path": route.path if route is not None else "",
        "kind": route.kind_name if route is not None else "unrouted",
        "policies": route_summary(route) if route is not None else [],
        "methods": sorted(route.methods) if route is not None else [],
        "timeout_ms": timeout_ms,
        **numbers,
        "levels": levels,
        "level": card_level(levels, busy=numbers["rps"] > 0 or numbers["in_flight"] > 0),
    }
    entry["points"] = LIVE.points(live.history, None if history else 1)
    return entry


def _targets(gateway: Gateway, upstream: Upstream) -> list[dict[str, Any]]:
    guard = gateway.runtime.guard(upstream)
    return [s.describe() for s in guard.balancer.states] if guard is not None else []


def _upstream(gateway: Gateway, name: str, live: UpstreamLive, *, history: bool) -> dict[str, Any]:
    upstream = gateway.table.upstreams[name]
    circuit = _circuit(gateway, name)
    numbers = live.summary()
    levels = upstream_levels(numbers, circuit)
    return {
        "name": name,
        "url": f"{upstream.scheme}://{upstream.host}:{upstream.port}{upstream.base_path}",
        "circuit": circuit,
        "targets": _targets(gateway, upstream),
        **numbers,
        "levels": levels,
        "level": card_level(levels, busy=numbers["cps"] > 0),
        "points": LIVE.points(live.history, None if history else 1),
    }


def _totals(lives: list[RouteLive], *, history: bool) -> dict[str, Any]:
    """Every route together: rates summed, latencies from the merged histograms."""
    summaries = [live.summary() for live in lives]
    numbers: dict[str, Any] = {
        key: round(sum(s[key] for s in summaries), 2) for key in ("rps", "r4xx", "r5xx", "r429")
    }
    numbers["in_flight"] = sum(s["in_flight"] for s in summaries)
    numbers["p50"], numbers["p99"] = merged_percentiles(h for live in lives for h in live.recent)
    codes: dict[str, int] = {}
    for summary in summaries:
        for status, count in summary["statuses"].items():
            codes[status] = codes.get(status, 0) + count
    numbers["statuses"] = dict(sorted(codes.items()))
    levels = totals_levels(numbers)
    seconds = HISTORY if history else 1
    points = []
    for i in range(seconds, 0, -1):  # summed per second: requests, 4xx, 5xx, 429, in flight
        row = [0, 0, 0, 0, 0]
        for live in lives:
            if len(live.history) >= i:
                p = live.history[-i]
                row[0] += p[0]
                row[1] += p[1]
                row[2] += p[2]
                row[3] += p[3]
                row[4] += p[6]
        points.append([LIVE.second - i + 1, *row])
    busy = numbers["rps"] > 0 or numbers["in_flight"] > 0
    return {**numbers, "levels": levels, "level": card_level(levels, busy=busy), "points": points}


def document(*, history: bool) -> dict[str, Any]:
    """Everything the dashboard shows: `history` with every point kept."""
    gateway = serving.current()
    config = LIVE.config
    doc: dict[str, Any] = {
        "time": utc_timestamp(LIVE.second, "seconds"),
        "config": {
            "file": config.file,
            "digest": config.digest,
            "loaded_at": utc_timestamp(config.loaded_at, "seconds") if config.loaded_at else None,
            "routes": config.routes,
        },
        "reloads": [
            {**event, "at": utc_timestamp(event["at"], "seconds")}
            for event in reversed(LIVE.reloads)
        ],
        "errors": [
            {**error, "at": utc_timestamp(error["at"], "seconds")}
            for error in reversed(LIVE.errors.values())
        ],
        "draining": lifecycle.draining,
        "routes": [],
        "upstreams": [],
        "panels": [_panel(panel) for panel in PANELS.values()],
    }
    if history:
        doc["legend"] = [list(rule) for rule in LEGEND]
    if gateway is None:
        return doc
    lives = []
    for route in gateway.table.routes:  # every route, with or without a second behind it
        live = LIVE.routes.get(route.name) or RouteLive()
        lives.append(live)
        doc["routes"].append(_route(route.name, route, live, history=history))
    unrouted = LIVE.routes.get(UNROUTED)
    if unrouted is not None and any(p[1] for p in unrouted.history):
        lives.append(unrouted)
        doc["routes"].append(_route(UNROUTED, None, unrouted, history=history))
    doc["totals"] = _totals(lives, history=history)
    for name in sorted(gateway.table.upstreams):
        upstream_live = LIVE.upstreams.get(name) or UpstreamLive()
        doc["upstreams"].append(_upstream(gateway, name, upstream_live, history=history))
    return doc


def _panel(panel: Panel) -> dict[str, Any]:
    """A policy's table (the first PANEL_ROWS rows of its document)."""
    doc = panel.document(PANEL_ROWS)
    return {
        "path": panel.path,
        "title": panel.title,
        "note": panel.note,
        "columns": doc.get("columns", []),
        "rows": doc.get("rows", [])[:PANEL_ROWS],
    }


PANEL_ROWS = 20
_PAGE: list[tuple[bytes, bytes]] = []  # (the page, its Content-Security-Policy), made once


def dashboard_page() -> tuple[bytes, bytes]:
    """The dashboard: gateway/templates/gateway/dashboard.html with its style
    and script (gateway/static/gateway/) inline, so that it needs nothing but
    this listener; the CSP admits exactly those two by their hashes."""
    if not _PAGE:
        from django.template.loader import render_to_string
        from django.utils.safestring import mark_safe

        static = Path(__file__).resolve().parent.parent / "static" / "gateway"
        style = (static / "dashboard.css").read_text()
        script = (static / "dashboard.js").read_text()
        page = render_to_string(
            "gateway/dashboard.html",
            {
                "style": mark_safe(style),  # noqa: S308 (our own file, not input)
                "script": mark_safe(script),  # noqa: S308
                "window": WINDOW,
                "history_minutes": HISTORY // 60,
                "recent_errors": RECENT_ERRORS,
            },
        )
        policy = (
            "default-src 'none'; "
            f"script-src '{_digest(script)}'; style-src '{_digest(style)}'; "
            "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'"
        )
        _PAGE.append((page.encode(), policy.encode()))
    return _PAGE[0]


def _digest(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def event(kind: str, doc: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(doc) + b"\n\n"


class Feed:
    """The open dashboard streams, and the once-a-second update they get."""

    def __init__(self) -> None:
        self.streams: set[asyncio.Queue[bytes | None]] = set()

    def tick(self) -> None:
        gateway = serving.current()
        LIVE.tick(gateway.table if gateway is not None else None)
        if not self.streams:
            return  # nobody is looking: the history was kept, nothing else to do
        update = event("tick", document(history=False))
        for stream in list(self.streams):
            if stream.qsize() >= _BEHIND:
                self.close(stream)
            else:
                stream.put_nowait(update)

    def open(self) -> asyncio.Queue[bytes | None]:
        stream: asyncio.Queue[bytes | None] = asyncio.Queue()
        stream.put_nowait(event("snapshot", document(history=True)))
        self.streams.add(stream)
        return stream

    def close(self, stream: asyncio.Queue[bytes | None]) -> None:
        if stream in self.streams:
            self.streams.discard(stream)
            stream.put_nowait(None)  # the stream's end

    def close_all(self) -> None:
        for stream in list(self.streams):
            self.close(stream)


FEED = Feed()
