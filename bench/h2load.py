"""Run h2load (nghttp2's HTTP/2 load generator) and read its report."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

__all__ = ["H2Result", "require_h2load", "run_h2load"]


@dataclass
class H2Result:
    requests: int  # done
    succeeded: int  # 2xx
    seconds: float
    rps: float
    mean_ms: float

    @property
    def errors(self) -> int:
        return self.requests - self.succeeded


def require_h2load() -> str:
    path = shutil.which("h2load")
    if path is None:
        raise SystemExit(
            "make bench needs h2load: apt-get install nghttp2-client (Debian's package)"
        )
    return path


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_h2load(
    url: str,
    *,
    clients: int,
    streams: int = 1,
    seconds: float | None = None,
    requests: int | None = None,
    cpus: str | None = None,
    headers: dict[str, str] | None = None,
    data: str | None = None,
    warmup: float = 0.0,
) -> H2Result:
    """`clients` connections with `streams` concurrent streams each, for
    `seconds` (after `warmup`) or `requests` in all; `data`: a file POSTed."""
    command = [require_h2load(), "-c", str(clients), "-m", str(streams), "-t", "1"]
    if seconds is not None:
        command += ["-D", str(max(1, round(seconds)))]
        if warmup:
            command += ["--warm-up-time", str(max(1, round(warmup)))]
    else:
        command += ["-n", str(requests or clients * streams)]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    if data is not None:
        command += ["-d", data]
    command.append(url)
    if cpus and shutil.which("taskset"):
        command = ["taskset", "-c", cpus, *command]
    out = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=(seconds or 60) + 120
    ).stdout
    finished = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", out)
    counts = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", out)
    if finished is None or counts is None:
        raise RuntimeError(f"unexpected h2load output:\n{out}")
    return H2Result(
        requests=int(counts.group(1)),
        succeeded=int(counts.group(2)),
        seconds=float(finished.group(1)),
        rps=float(finished.group(2)),
        mean_ms=_ms(mean.group(1), mean.group(2)) if mean else float("nan"),
    )
