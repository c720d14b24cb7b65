"""Real processes for tests: start one on a free port, wait until it answers,
stop it; and the stub upstream (tests/integration/stub.py) as a process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

__all__ = ["PYTHON", "ROOT", "Process", "Stub", "manage", "start_process"]


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode

    def status(self, key: str) -> int:
        """A /proc/PID/status value in kB (VmRSS, VmHWM) or a count (Threads)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise KeyError(key)


def start_process(
    args: list[str],
    port: int,
    log: Path,
    env: dict[str, str] | None = None,
    ready_path: str = "/healthz",
    scheme: str = "http",
) -> Process:
    """`scheme` https: a TLS server, probed without checking its certificate;
    tcp: ready once it accepts a connection (a server that wants a client
    certificate answers no probe)."""
    with log.open("wb") as handle:  # the child keeps its own copy of the descriptor
        popen = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    process = Process(popen, port, log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"{args[:4]} exited with {popen.returncode}:\n{process.output()}")
        try:
            if scheme == "tcp":
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            else:
                httpx.get(f"{scheme}://127.0.0.1:{port}{ready_path}", timeout=1, verify=False)
            return process
        except (httpx.TransportError, OSError):
            time.sleep(0.05)
    process.stop(signal.SIGKILL)
    raise RuntimeError(f"{args[:4]} did not start:\n{process.output()}")


@dataclass
class Stub:
    process: Process

    @property
    def url(self) -> str:
        return self.process.url

    def stats(self) -> dict[str, Any]:
        return httpx.get(self.url + "/_stats").json()

    def reset(self) -> None:
        httpx.get(self.url + "/_reset")

    def count(self, raw_path: str) -> int:
        return int(self.stats()["paths"].get(raw_path, 0))


def manage(*args: str) -> subprocess.CompletedProcess[str]:
    """`python manage.py ARGS` from the repository, as a user runs it."""
    return subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
