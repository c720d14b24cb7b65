"""Live reload of the routes file (SPEC 2).

Every POLL_SECONDS the file is stat()ed through any symlinks: an in-place
write, a rename over the file, and a Kubernetes ConfigMap update (which swaps
the `..data` symlink the file points through) all change what stat() sees, and
a stat() never misses an event the way a watch on a replaced inode can. When
the bytes changed, the file is parsed beside the running config (off the event
loop: a large file must not stall requests), a new Gateway is built, and one
reference is swapped. Requests already in flight finish on the Gateway they
started with. An invalid file is logged with its `file:line` problems and
changes nothing. gateway_config_reloads_total{result} counts both.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from pathlib import Path

from . import metrics, registry
from .config import RoutesFileError, load_route_table
from .services import Services

__all__ = ["POLL_SECONDS", "Reloader"]

logger = logging.getLogger("gateway.reload")
POLL_SECONDS = 1.0


def _signature(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)  # follows symlinks: a ConfigMap swap changes the target
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


class Reloader:
    def __init__(self, path: Path, services: Services) -> None:
        self.path = path
        self.services = services
        self._seen = _signature(path)
        self._digest = self._read_digest()

    def _read_digest(self) -> bytes | None:
        try:
            return hashlib.sha256(self.path.read_bytes()).digest()
        except OSError:
            return None

    async def run(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                await self.check()
            except Exception:  # a reload bug must never stop the watching
                logger.exception("reload check failed")

    async def check(self) -> bool:
        """Reload if the file changed; True when a new config was installed."""
        seen = _signature(self.path)
        if seen == self._seen:
            return False
        self._seen = seen
        digest = self._read_digest()
        if digest is None or digest == self._digest:
            return False  # gone for now (mid-swap), or touched without a change
        try:
            table = await asyncio.to_thread(load_route_table, self.path)
        except RoutesFileError as exc:
            metrics.CONFIG_RELOADS.labels("error").inc()
            logger.error(
                "routes file reload failed; the previous config keeps serving:\n%s",
                "\n".join(exc.lines()),
                extra={"problems": exc.lines()},
            )
            return False
        self._digest = digest
        gateway = registry.build_gateway(table, self.services)
        registry.install(gateway)
        self.services.retire_unused_clients(table.upstreams)
        metrics.CONFIG_RELOADS.labels("success").inc()
        logger.info("routes file reloaded: %d routes", len(table.routes))
        return True
