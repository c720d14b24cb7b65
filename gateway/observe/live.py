"""What the dashboard shows (SPEC 3.14), kept in the process, second by second.

Per route: requests, 4xx, 5xx and 429 answers (and each error status), a
latency histogram and the requests in flight; per upstream: attempts,
failures and their latency; the last error answers (with their request ids);
the config that serves and the recent reloads. The request path only adds to
counters of the current second (a dict lookup and a few integer additions,
plus a bisect for the latency bucket; an error answer also a status count
and an entry in the ring of recent errors). Once a second `tick()` folds them into a five-minute
history: per second the rates, p50 and p99 (from that second's histogram) and
the requests in flight. The dashboard's numbers are the last `WINDOW` seconds:
rates averaged, percentiles from the merged histograms.

Percentiles come from buckets 12% apart (100 µs to 60 s), so a p99 is within
about 6% of the exact value: plenty for a screen, cheap for the request path.
"""

from __future__ import annotations

import bisect
import itertools
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.routes.model import RouteTable

__all__ = ["HISTORY", "LIVE", "RECENT_ERRORS", "WINDOW", "Live", "merged_percentiles"]

HISTORY = 300  # seconds of history the charts show
WINDOW = 10  # seconds the headline numbers cover
UNROUTED = ""  # requests no route matched (404, 405, bad paths)
RECENT_ERRORS = 20  # error answers the dashboard lists

_BOUNDS: tuple[float, ...] = tuple(0.0001 * 1.12**i for i in range(97))  # 100 µs .. ~6 s x 10
_NO_LATENCY = None
_IDLE: tuple[Any, ...] = (0, 0, 0, 0, None, None, 0)  # a second without requests
_NO_REQUESTS: list[int] = []  # its latency histogram
_NO_STATUSES: dict[int, int] = {}  # its error statuses
_NO_CALLS: tuple[Any, ...] = (0, 0, None, None)


def _histogram() -> list[int]:
    return [0] * (len(_BOUNDS) + 1)


def merged_percentiles(histograms: Any) -> tuple[float | None, float | None]:
    """p50 and p99 (ms) of several latency histograms together."""
    merged = [sum(counts) for counts in zip(*(h for h in histograms if h), strict=True)]
    total = sum(merged)
    return _percentile(merged, total, 0.5), _percentile(merged, total, 0.99)


def _last[P](history: deque[P]) -> list[P]:
    """The last WINDOW points, without copying the whole history."""
    return list(itertools.islice(reversed(history), WINDOW))


def _percentile(histogram: list[int], total: int, fraction: float) -> float | None:
    """The latency (ms) below which `fraction` of `total` fell, interpolated in its bucket."""
    if total == 0:
        return _NO_LATENCY
    rank = fraction * total
    seen = 0
    for index, count in enumerate(histogram):
        if count and seen + count >= rank:
            low = _BOUNDS[index - 1] if index else 0.0
            high = _BOUNDS[index] if index < len(_BOUNDS) else _BOUNDS[-1] * 1.12
            return round((low + (high - low) * (rank - seen) / count) * 1000, 2)
        seen += count
    return round(_BOUNDS[-1] * 1000, 2)


@dataclass(slots=True, eq=False)
class RouteLive:
    # the current second
    requests: int = 0
    client_errors: int = 0  # 4xx other than 429
    server_errors: int = 0  # 5xx
    limited: int = 0  # 429
    statuses: dict[int, int] = field(default_factory=dict)  # error answers by status
    histogram: list[int] = field(default_factory=_histogram)
    # across seconds
    in_flight: int = 0
    # One point per second, the newest last (the seconds are implicit: every
    # history ends at Live.second). An idle second is the shared _IDLE point,
    # so a thousand quiet routes cost a thousand deques of pointers.
    history: deque[tuple[Any, ...]] = field(default_factory=lambda: deque(maxlen=HISTORY))
    recent: deque[list[int]] = field(default_factory=lambda: deque(maxlen=WINDOW))
    recent_statuses: deque[dict[int, int]] = field(default_factory=lambda: deque(maxlen=WINDOW))

    def fold(self) -> tuple[Any, ...]:
        """The second that ended: its point in the history
        (requests, 4xx, 5xx, 429, p50, p99, in flight); counters start over."""
        histogram, n = self.histogram, self.requests
        if n == 0:
            point = _IDLE if self.in_flight == 0 else (0, 0, 0, 0, None, None, self.in_flight)
            self.recent.append(_NO_REQUESTS)
        else:
            point = (
                n,
                self.client_errors,
                self.server_errors,
                self.limited,
                _percentile(histogram, n, 0.5),
                _percentile(histogram, n, 0.99),
                self.in_flight,
            )
            self.recent.append(histogram)
            self.requests = self.client_errors = self.server_errors = self.limited = 0
            self.histogram = _histogram()
        self.recent_statuses.append(self.statuses or _NO_STATUSES)
        if self.statuses:
            self.statuses = {}
        self.history.append(point)
        return point

    def summary(self) -> dict[str, Any]:
        """The headline numbers: the last WINDOW seconds."""
        points = _last(self.history)
        seconds = max(len(points), 1)
        p50, p99 = merged_percentiles(self.recent)
        codes: dict[int, int] = {}
        for statuses in self.recent_statuses:
            for status, count in statuses.items():
                codes[status] = codes.get(status, 0) + count
        return {
            "rps": round(sum(p[0] for p in points) / seconds, 2),
            "r4xx": round(sum(p[1] for p in points) / seconds, 2),
            "r5xx": round(sum(p[2] for p in points) / seconds, 2),
            "r429": round(sum(p[3] for p in points) / seconds, 2),
            "p50": p50,
            "p99": p99,
            "in_flight": self.in_flight,
            "statuses": {str(status): codes[status] for status in sorted(codes)},
        }


@dataclass(slots=True, eq=False)
class UpstreamLive:
    calls: int = 0
    failures: int = 0
    timed: int = 0  # calls with a duration (not refused by an open circuit)
    histogram: list[int] = field(default_factory=_histogram)
    history: deque[tuple[Any, ...]] = field(default_factory=lambda: deque(maxlen=HISTORY))
    recent: deque[list[int]] = field(default_factory=lambda: deque(maxlen=WINDOW))

    def fold(self) -> tuple[Any, ...]:
        """The second that ended: (calls, failures, p50, p99)."""
        if not (self.calls or self.failures):
            self.history.append(_NO_CALLS)
            self.recent.append(_NO_REQUESTS)
            return _NO_CALLS
        histogram, timed = self.histogram, self.timed
        point = (
            self.calls,
            self.failures,
            _percentile(histogram, timed, 0.5),
            _percentile(histogram, timed, 0.99),
        )
        self.recent.append(histogram if timed else _NO_REQUESTS)
        self.calls = self.failures = self.timed = 0
        self.histogram = _histogram()
        self.history.append(point)
        return point

    def summary(self) -> dict[str, Any]:
        points = _last(self.history)
        seconds = max(len(points), 1)
        p50, p99 = merged_percentiles(self.recent)
        return {
            "cps": round(sum(p[0] for p in points) / seconds, 2),
            "fps": round(sum(p[1] for p in points) / seconds, 2),
            "p50": p50,
            "p99": p99,
        }


@dataclass(slots=True)
class ConfigStatus:
    file: str = ""
    digest: str = ""
    loaded_at: float = 0.0
    routes: int = 0


class Live:
    """The process's live statistics (one instance, `LIVE`)."""

    def __init__(self) -> None:
        self.routes: dict[str, RouteLive] = {}
        self.upstreams: dict[str, UpstreamLive] = {}
        self.config = ConfigStatus()
        self.reloads: deque[dict[str, Any]] = deque(maxlen=20)
        # The newest error answers, one entry per (route, status, method, path):
        # a flood of one error takes one line, with its count and latest request id.
        self.errors: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
        self.second = int(time.time())

    # --- the request path ------------------------------------------------------------
    def begin(self, route: str | None) -> None:
        live = self.routes.get(route or UNROUTED)
        if live is None:
            live = self.routes[route or UNROUTED] = RouteLive()
        live.in_flight += 1

    def end(
        self,
        route: str | None,
        status: int,
        seconds: float,
        *,
        counted: bool = True,
        request: tuple[str, str, str] | None = None,
    ) -> None:
        """A request `begin` saw is over; `counted`: it was answered (not
        abandoned); `request` (request id, method, path as logged) for an
        error answer's entry among the recent errors."""
        live = self.routes.get(route or UNROUTED)
        if live is None:
            return
        live.in_flight -= 1
        if not counted:
            return
        live.requests += 1
        if status >= 400:
            if status >= 500:
                live.server_errors += 1
            elif status == 429:
                live.limited += 1
            else:
                live.client_errors += 1
            live.statuses[status] = live.statuses.get(status, 0) + 1
            if request is not None and status != 429:  # limits have their own number
                self._error(route, status, seconds, request)
        live.histogram[bisect.bisect_left(_BOUNDS, seconds)] += 1

    def _error(
        self, route: str | None, status: int, seconds: float, request: tuple[str, str, str]
    ) -> None:
        request_id, method, path = request
        key = (route, status, method, path)
        entry = self.errors.get(key)
        if entry is None:
            entry = self.errors[key] = {
                "route": route,
                "status": status,
                "method": method,
                "path": path,
                "count": 0,
            }
            if len(self.errors) > RECENT_ERRORS:
                self.errors.popitem(last=False)
        else:
            self.errors.move_to_end(key)
        entry["count"] += 1
        entry["at"] = time.time()
        entry["request_id"] = request_id
        entry["duration_ms"] = round(seconds * 1000, 1)

    def call(self, upstream: str, failed: bool, seconds: float | None = None) -> None:
        """An upstream attempt (`seconds`: how long it took; None when an open
        circuit refused it without a call)."""
        live = self.upstreams.get(upstream)
        if live is None:
            live = self.upstreams[upstream] = UpstreamLive()
        live.calls += 1
        if failed:
            live.failures += 1
        if seconds is not None:
            live.timed += 1
            live.histogram[bisect.bisect_left(_BOUNDS, seconds)] += 1

    # --- config events -----------------------------------------------------------------
    def loaded(self, file: str, digest: bytes, routes: int, *, reload: bool) -> None:
        self.config = ConfigStatus(file, digest.hex(), time.time(), routes)
        if reload:
            self.reloads.append(
                {"at": self.config.loaded_at, "result": "loaded", "routes": routes, "errors": []}
            )

    def refused(self, what: str, errors: list[str]) -> None:
        self.reloads.append({"at": time.time(), "result": what, "routes": 0, "errors": errors})

    def restored(self) -> None:
        """The file on disk is the serving config's again (after a refused edit)."""
        self.reloads.append(
            {"at": time.time(), "result": "restored", "routes": self.config.routes, "errors": []}
        )

    def points(self, history: deque[tuple[Any, ...]], last: int | None = None) -> list[list[Any]]:
        """`history` (or its `last` points) with their seconds, oldest first."""
        kept = list(history) if last is None else list(history)[-last:]
        first = self.second - len(kept) + 1
        return [[first + i, *point] for i, point in enumerate(kept)]

    # --- once a second, and for the dashboard -----------------------------------------
    def tick(self, table: RouteTable | None) -> dict[str, Any]:
        """Fold the second that ended; forget routes and upstreams the
        current config no longer has (once nothing is in flight on them).
        Returns the new points, for the dashboards that are open."""
        self.second = second = int(time.time())
        keep = {r.name for r in table.routes} if table is not None else set()
        keep.add(UNROUTED)
        for name in [n for n, r in self.routes.items() if n not in keep and not r.in_flight]:
            del self.routes[name]
        for name in keep - self.routes.keys():
            self.routes[name] = RouteLive()
        routes = {name: (second, *live.fold()) for name, live in self.routes.items()}
        upstream_names = set(table.upstreams) if table is not None else set()
        for name in [n for n in self.upstreams if n not in upstream_names]:
            del self.upstreams[name]
        for name in upstream_names - self.upstreams.keys():
            self.upstreams[name] = UpstreamLive()
        upstreams = {name: (second, *live.fold()) for name, live in self.upstreams.items()}
        return {"second": second, "routes": routes, "upstreams": upstreams}


LIVE = Live()
