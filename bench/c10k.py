"""C10k for make bench: N requests opened at once, each on its own connection,
against a route whose upstream answers after 5 s. Counts 200s, refusals,
resets and timeouts, and the time until the last answer."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from collections import Counter
from dataclasses import dataclass

__all__ = ["C10kResult", "raise_fd_limit", "run_c10k"]


@dataclass
class C10kResult:
    opened: int
    statuses: Counter[str]
    seconds: float  # until the last answer (or failure)

    @property
    def ok(self) -> int:
        return self.statuses.get("200", 0)


def raise_fd_limit() -> int:
    """Raise this process's soft open-files limit to the hard one; children
    (the gateway, the stubs) inherit it. Each proxied request holds two sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def _one(host: str, port: int, path: str, deadline: float) -> str:
    try:
        async with asyncio.timeout(deadline):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
                )
                await writer.drain()
                status_line = await reader.readline()
                await reader.read()  # the rest, until the server closes
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except TimeoutError:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except ConnectionResetError:
        return "reset"
    except OSError as exc:
        return f"error:{exc.errno}"
    parts = status_line.split()
    return parts[1].decode() if len(parts) > 1 else "empty"


async def _all(host: str, port: int, path: str, n: int, deadline: float) -> C10kResult:
    started = time.perf_counter()
    results = await asyncio.gather(*(_one(host, port, path, deadline) for _ in range(n)))
    return C10kResult(n, Counter(results), time.perf_counter() - started)


def run_c10k(host: str, port: int, path: str, n: int, deadline: float = 30.0) -> C10kResult:
    raise_fd_limit()
    run = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        run = uvloop.run
    return run(_all(host, port, path, n, deadline))
