"""Two gateways measured side by side, round after round (bench/observe.py,
bench/policies.py): which one starts first alternates (on one CPU the second
process runs ~1% cheaper: an A/A pair shows it), and the verdict is the
median of the per-round ratios of CPU per request."""

from __future__ import annotations

import statistics
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.__main__ import Bench, Process
    from bench.limits import Check
    from bench.wrk import WrkResult

__all__ = ["Compared", "Load", "Run", "compare", "judged_pairs", "load_both", "run_pair_once"]

WARMUP = 2.0

type Run = tuple[WrkResult, float]  # wrk's result, CPU seconds per 1,000 requests


@dataclass(frozen=True)
class Compared:
    ratios: list[float]
    mine: Run  # the round closest to the median
    base: Run

    @property
    def median(self) -> float:
        return statistics.median(self.ratios)

    @property
    def note(self) -> str:
        return (
            f"{self.median:.3f}x (median of {len(self.ratios)} pairs, "
            f"{min(self.ratios):.3f}-{max(self.ratios):.3f})"
        )


def compare(
    rounds: int, names: tuple[str, str], run_pair: Callable[[bool], tuple[Run, Run]]
) -> Compared:
    """`run_pair(mine_first)` runs one round and returns (mine, base)."""
    ratios: list[float] = []
    kept: list[tuple[Run, Run]] = []
    for round_ in range(max(rounds, 5)):
        mine, base = run_pair(round_ % 2 == 0)
        ratios.append(mine[1] / base[1])
        kept.append((mine, base))
        sys.stderr.write(
            f"  {names[0]:6} vs {names[1]:4} round {round_ + 1}: {mine[1]:.3f} vs"
            f" {base[1]:.3f} CPU s / 1k req ({ratios[-1]:.3f}x)\n"
        )
    median = statistics.median(ratios)
    mine, base = min(kept, key=lambda pair: abs(pair[0][1] / pair[1][1] - median))
    return Compared(ratios, mine, base)


def load_both(
    gateways: Sequence[Process], load: Callable[[int, float], WrkResult], lengths: Sequence[float]
) -> list[Run]:
    """Both gateways under load at once (`load(i, seconds)` runs wrk against
    gateway i), for each of `lengths` in turn (a warm-up, then the
    measurement): the last round's (result, CPU s per 1k requests) of each."""
    measured: list[Run] = []
    for length in lengths:
        results: dict[int, WrkResult] = {}

        def run(i: int, length: float = length, results: dict[int, WrkResult] = results) -> None:
            results[i] = load(i, length)

        before = [g.cpu_seconds() for g in gateways]
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(gateways))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        used = [g.cpu_seconds() - b for g, b in zip(gateways, before, strict=True)]
        measured = [
            (results[i], used[i] / max(results[i].requests, 1) * 1000) for i in range(len(gateways))
        ]
    return measured


@dataclass(frozen=True)
class Load:
    """One side of a pair: a path on a routes file, its wrk extras."""

    key: str
    label: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    script: str | None = None


def run_pair_once(bench: Bench, routes: Path, loads: tuple[Load, Load], load_cpu: str) -> list[Run]:
    """Two gateways at once, each under its own wrk: (result, CPU s per 1k) each."""
    from bench.__main__ import SECONDS
    from bench.wrk import run_wrk

    gateways = []
    try:
        for _ in loads:
            gateways.append(bench.gateway(routes=routes))

        def load(i: int, length: float) -> WrkResult:
            spec = loads[i]
            return run_wrk(
                gateways[i].url + spec.path,
                connections=64,
                seconds=length,
                cpus=load_cpu,
                headers=spec.headers,
                script=spec.script,
            )

        measured = load_both(gateways, load, (WARMUP, SECONDS))
        for i, (result, _) in enumerate(measured):
            if result.errors:
                raise SystemExit(f"{loads[i].key}: {result.errors} errors: the scenario is broken")
    finally:
        for gateway in gateways:
            gateway.stop()
    return measured


def judged_pairs(
    bench: Bench,
    routes: Path,
    pairs: list[tuple[Load, Load, float]],
    load_cpu: str,
    rounds: int,
) -> list[Check]:
    """Each (mine, base, limit) side by side for `rounds`: both rows added to
    the table, and a check of the median CPU ratio (limit 0: reported only)."""
    from bench.__main__ import Row

    checks: list[Check] = []
    for mine, base, limit in pairs:

        def run_pair(mine_first: bool, mine: Load = mine, base: Load = base) -> tuple[Run, Run]:
            order = (mine, base) if mine_first else (base, mine)
            runs = run_pair_once(bench, routes, order, load_cpu)
            return (runs[0], runs[1]) if mine_first else (runs[1], runs[0])

        compared = compare(rounds, (mine.key, base.key), run_pair)
        for load, (r, c) in ((mine, compared.mine), (base, compared.base)):
            label = f"{load.label} (beside {base.key if load is mine else mine.key})"
            bench.add(
                Row(load.key, label, "gateway", 64, r, c, None, runs=len(compared.ratios)),
                report=False,
            )
        name = f"{mine.key}: CPU per request vs {base.key}"
        if limit:
            checks.append(
                (f"{name}, side by side", compared.note, f"<= {limit}x", compared.median <= limit)
            )
        else:
            checks.append((f"{name} (reported)", compared.note, "reported", True))
    return checks
