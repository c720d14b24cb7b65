"""Paired A/B runs: `BENCH_AGAINST=<git ref> make bench` checks the ref out
beside this tree (a git worktree in the bench's directory) and runs every
gateway scenario the ratio targets compare twice per round, this tree's
gateway and the ref's, one after the other on the same machine: the drift
of a shared machine falls on both. The verdicts then say, scenario by
scenario, this tree's CPU per request and throughput as a ratio of the ref's.

`BENCH_TREE=<directory>` runs the whole bench (any BENCH_ONLY group) on the
gateway of another checkout instead.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.__main__ import Bench, Process, Row, Scenario

__all__ = ["PAIRED", "checkout", "remove", "twins", "verdicts"]

PAIRED = ("A", "B64", "C", "CH", "C0", "D")  # the gateway scenarios compared


def checkout(root: Path, ref: str, workdir: Path) -> Path:
    tree = workdir / "against"
    subprocess.run(
        ["git", "-C", str(root), "worktree", "add", "--detach", str(tree), ref],
        check=True,
        capture_output=True,
    )
    return tree


def remove(root: Path, tree: Path) -> None:
    subprocess.run(
        ["git", "-C", str(root), "worktree", "remove", "--force", str(tree)],
        check=False,
        capture_output=True,
    )


def in_tree(
    bench: Bench, tree: Path, starter: Callable[[], Process | None]
) -> Callable[[], Process | None]:
    def start() -> Process | None:
        previous, bench.tree = bench.tree, tree
        try:
            return starter()
        finally:
            bench.tree = previous

    return start


def twins(compared: Sequence[Scenario], bench: Bench, tree: Path, ref: str) -> list[Scenario]:
    """Each compared gateway scenario, then the same on the ref's gateway."""
    from dataclasses import replace

    out = []
    for scenario in compared:
        out.append(scenario)
        if scenario.key in PAIRED and scenario.target == "gateway":
            out.append(
                replace(
                    scenario,
                    target=f"gateway @ {ref}",
                    starter=in_tree(bench, tree, scenario.starter),
                )
            )
    return out


def verdicts(
    rows: Sequence[Row], ref: str, tolerance: float = 0.05
) -> list[tuple[str, str, str, bool]]:
    """(name, value, target, met): this tree's CPU per request and req/s
    over the ref's, scenario by scenario (the median runs)."""
    checks = []
    for key in PAIRED:
        mine = next((r for r in rows if r.key == key and r.target == "gateway"), None)
        theirs = next((r for r in rows if r.key == key and r.target == f"gateway @ {ref}"), None)
        if not (mine and theirs and mine.cpu_per_1k and theirs.cpu_per_1k):
            continue
        if mine.result is None or theirs.result is None:
            continue
        from bench.__main__ import paired_cpu_ratio

        cpu = paired_cpu_ratio(mine, theirs) or mine.cpu_per_1k / theirs.cpu_per_1k
        rps = mine.result.rps / theirs.result.rps
        checks.append(
            (
                f"{key} vs {ref}: CPU per request (req/s {rps:.2f}x)",
                f"{cpu:.2f}x",
                f"<= {1 + tolerance:.2f}x",
                cpu <= 1 + tolerance,
            )
        )
    return checks
