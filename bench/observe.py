"""make bench, observability (issue 13's speed targets): scenario C's CPU per
request with trace context off and on, with OpenTelemetry export on (every
request sampled, and 10%) to a local OTLP receiver, and with the dashboard
open (a client reading its SSE stream the whole time).

  T0    C, trace context switched off (bench/notrace.py): the "before"
  T     C as shipped: trace context on, export off           T    / T0 <= 1.03
  T100  export on, every request sampled                     T100 / T  <= 1.15
  T10   export on, 10% sampled (traceidratio 0.1)            T10  / T  <= 1.05
  TD    the dashboard's /events stream open                  TD   / T  <= 1.03

Targets of a few percent are below what one process after another can show
on this machine (the CPU's speed drifts by 10-20% between runs). So each
comparison runs its two gateways at the same time, both pinned to the
gateway CPU, each loaded by its own wrk: whatever the CPU does, it does to
both (an A/A pair of identical gateways agrees within about 1%, the one
started second a little cheaper, so the order alternates). Each pair runs
ROUNDS times (at least 5); the verdict is the median of the per-pair ratios
of CPU per request. The export scenarios also report the
spans dropped (gateway_trace_export_errors_total): a figure that dropped spans
would flatter.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from bench.sidebyside import Run, compare, load_both

if TYPE_CHECKING:
    from bench.__main__ import Bench, Process
    from bench.limits import Check
    from bench.wrk import WrkResult

__all__ = ["run_all"]

PAIRS = (("T", "T0", 1.03), ("T100", "T", 1.15), ("T10", "T", 1.05), ("TD", "T", 1.03))
LABELS = {
    "T0": "C, no trace context (baseline)",
    "T": "C, trace context on (as shipped)",
    "T100": "C, OTLP export, every request sampled",
    "T10": "C, OTLP export, 10% sampled",
    "TD": "C, dashboard open (SSE)",
}
WARMUP = 2.0


def run_all(
    bench: Bench,
    start: Callable[..., Process],
    free_port: Callable[[], int],
    load_cpu: str,
    rounds: int,
) -> list[Check]:
    """Every pair of PAIRS, side by side, `rounds` times (at least 5)."""
    from bench.__main__ import SECONDS, Row, pinned

    sink_port = free_port()
    sink = start(
        pinned(load_cpu, [sys.executable, "-m", "bench.otlpsink", "--port", str(sink_port)]),
        sink_port,
        "/",
    )
    sink_url = f"http://127.0.0.1:{sink_port}"
    checks: list[Check] = []
    try:
        for key, base, limit in PAIRS:
            dropped = 0.0

            def run_pair(mine_first: bool, key: str = key, base: str = base) -> tuple[Run, Run]:
                nonlocal dropped
                order = (key, base) if mine_first else (base, key)
                runs, spans = _pair(bench, order, sink_url, free_port, load_cpu, SECONDS, pinned)
                dropped += spans
                return runs if mine_first else (runs[1], runs[0])

            compared = compare(rounds, (key, base), run_pair)
            for k, (r, c) in ((key, compared.mine), (base, compared.base)):
                label = f"{LABELS[k]} (beside {base if k == key else key})"
                bench.add(
                    Row(k, label, "gateway", 64, r, c, None, runs=len(compared.ratios)),
                    report=False,
                )
            note = compared.note
            if key in ("T100", "T10"):
                note += f", {dropped:,.0f} spans dropped"
            ok = compared.median <= limit and dropped == 0
            checks.append(
                (f"{key}: CPU per request vs {base}, side by side", note, f"<= {limit}x", ok)
            )
    finally:
        sink.stop()
    return checks


def _env(key: str, admin: int, sink_url: str) -> tuple[dict[str, str], str]:
    env = {"ADMIN_ADDR": f"127.0.0.1:{admin}"}
    if key in ("T100", "T10"):
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink_url
        env["OTEL_BSP_SCHEDULE_DELAY"] = "1000"
        env["OTEL_TRACES_SAMPLER"] = "always_on" if key == "T100" else "traceidratio"
        if key == "T10":
            env["OTEL_TRACES_SAMPLER_ARG"] = "0.1"
    app = "bench.notrace:application" if key == "T0" else "config.asgi:application"
    return env, app


def _pair(
    bench: Bench,
    keys: tuple[str, str],
    sink_url: str,
    free_port: Callable[[], int],
    load_cpu: str,
    seconds: float,
    pinned: Callable[[str, list[str]], list[str]],
) -> tuple[tuple[tuple[WrkResult, float], tuple[WrkResult, float]], float]:
    """Both gateways at once, each under its own wrk: (result, CPU s per 1k) each,
    and the spans the exporting one dropped."""
    from bench.wrk import run_wrk

    admins = [free_port() for _ in keys]
    gateways, readers = [], []
    try:
        for key, admin in zip(keys, admins, strict=True):
            env, app = _env(key, admin, sink_url)
            gateways.append(bench.gateway(env, app=app))
            if key == "TD":
                url = f"http://127.0.0.1:{admin}/events"
                readers.append(
                    subprocess.Popen(
                        pinned(load_cpu, ["curl", "-sN", url]), stdout=subprocess.DEVNULL
                    )
                )

        def load(i: int, length: float) -> WrkResult:
            url = gateways[i].url + "/fast3"
            return run_wrk(url, connections=64, seconds=length, cpus=load_cpu)

        measured = load_both(gateways, load, (WARMUP, seconds))
        dropped = sum(
            _export_errors(admin)
            for key, admin in zip(keys, admins, strict=True)
            if key in ("T100", "T10")
        )
    finally:
        for reader in readers:
            reader.kill()
            reader.wait()
        for gateway in gateways:
            gateway.stop()
    return (measured[0], measured[1]), dropped


def _export_errors(admin: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{admin}/metrics", timeout=10).text
    found = re.search(r"^gateway_trace_export_errors_total (\S+)$", text, re.M)
    return float(found[1]) if found else 0.0
