"""Run wrk and read its report."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

__all__ = ["WrkResult", "require_wrk", "run_wrk"]

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors of any kind plus non-2xx/3xx answers


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("make bench needs wrk: apt-get install wrk (Debian's package)")
    return path


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unreadable latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(
    url: str,
    *,
    connections: int,
    seconds: float,
    threads: int = 2,
    cpus: str | None = None,
    headers: dict[str, str] | None = None,
    script: str | None = None,
) -> WrkResult:
    """`script`: a wrk Lua file (a POST with a body: bench/policies.py)."""
    extra = [arg for name, value in (headers or {}).items() for arg in ("-H", f"{name}: {value}")]
    if script is not None:
        extra += ["-s", script]
    command = [
        require_wrk(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "--latency",
        *extra,
        url,
    ]
    if cpus and shutil.which("taskset"):
        command = ["taskset", "-c", cpus, *command]
    out = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + 120
    ).stdout
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    if total is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    seconds_taken = float(total.group(2)) * (60 if total.group(3) == "m" else 1)
    percentiles = dict(re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", out, re.M))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    if non2xx := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(non2xx.group(1))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return WrkResult(
        requests=int(total.group(1)),
        seconds=seconds_taken,
        rps=float(rps.group(1)) if rps else 0.0,
        p50_ms=_ms(percentiles["50"]) if "50" in percentiles else float("nan"),
        p99_ms=_ms(percentiles["99"]) if "99" in percentiles else float("nan"),
        errors=errors,
    )
