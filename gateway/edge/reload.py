"""Live reload of the routes file (SPEC 2).

Every POLL_SECONDS the file (and every file it made the loader read: the
JSON Schemas its `$ref`s name) is stat()ed through any symlinks: an in-place
write, a rename over the file, and a Kubernetes ConfigMap update (which swaps
the `..data` symlink the file points through) all change what stat() sees, and
a stat() never misses an event the way a watch on a replaced inode can. When
the bytes changed, the file is parsed beside the running config (off the event
loop: a large file must not stall requests), a new Gateway is built, and one
reference is swapped. Requests already in flight finish on the Gateway they
started with. An invalid file is logged with its `file:line` problems and
changes nothing; so does a deleted or unreadable file (one error line per
change). gateway_config_reloads_total{result} counts both outcomes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from pathlib import Path

from gateway import serving
from gateway.assembly import build_gateway
from gateway.observe import metrics
from gateway.observe.live import LIVE
from gateway.registry import parse_routes_file
from gateway.routes import RoutesFileError, files_digest, read_routes_file
from gateway.runtime import Runtime

__all__ = ["POLL_SECONDS", "Reloader", "file_digest"]

logger = logging.getLogger("gateway.reload")
POLL_SECONDS = 1.0


def _signature(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)  # follows symlinks: a ConfigMap swap changes the target
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def file_digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class Reloader:
    """Watches `path`; `loaded` is the SHA-256 of the bytes the serving config
    was parsed from. The first check reads the file whatever its stat says, so
    a change made between start-up's read and the first poll is not missed."""

    def __init__(self, path: Path, runtime: Runtime, loaded: bytes) -> None:
        self.path = path
        self.runtime = runtime
        # What stat() said at the last check; "unchecked" differs from None
        # (missing), so that a file gone before the first check is reported.
        self._seen: tuple[tuple[int, int, int, int] | None, ...] | str = "unchecked"
        self._digest = loaded
        self._extra: bytes | None = None  # the digest of the other files, once read
        self._differs = False  # the file on disk was refused (or unreadable) since the last load

    async def run(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                await self.check()
            except Exception:  # a reload bug must never stop the watching
                logger.exception("reload check failed")

    async def check(self) -> bool:
        """Reload if the file changed; True when a new config was installed."""
        files = _files_of_serving()
        seen = (_signature(self.path), *(_signature(Path(f)) for f in files))
        if seen == self._seen:
            return False
        self._seen = seen
        try:
            data = await asyncio.to_thread(read_routes_file, self.path)
        except RoutesFileError as exc:
            # Deleted or unreadable. Renames and ConfigMap swaps never leave the
            # path missing, so this is worth an error line (once per change).
            self._refuse(exc, "routes file cannot be read")
            LIVE.refused("unreadable", exc.lines())
            return False
        new = file_digest(data)
        extra = await asyncio.to_thread(files_digest, files)
        if self._extra is None:  # what the serving config was read with, at its load
            gateway = serving.current()
            self._extra = gateway.table.files_digest if gateway is not None else extra
        if new == self._digest and extra == self._extra:
            if self._differs:  # a refused edit undone: say so, or the dashboard stays red
                self._differs = False
                LIVE.restored()
                logger.info("config on disk matches the serving config again")
            return False  # touched without a change
        try:
            table = await asyncio.to_thread(parse_routes_file, data, str(self.path))
        except RoutesFileError as exc:
            self._refuse(exc, "routes file reload failed")
            LIVE.refused("refused", exc.lines())
            return False
        self._digest = new
        self._extra = table.files_digest
        gateway = build_gateway(table, self.runtime)
        serving.install(gateway)
        self.runtime.retire_unused_clients(table.upstreams)
        metrics.CONFIG_RELOADS.labels("success").inc()
        LIVE.loaded(str(self.path), new, len(table.routes), reload=True)
        logger.info("routes file reloaded: %d routes", len(table.routes))
        return True

    def _refuse(self, exc: RoutesFileError, what: str) -> None:
        self._differs = True
        metrics.CONFIG_RELOADS.labels("error").inc()
        logger.error(
            "%s; the previous config keeps serving:\n%s",
            what,
            "\n".join(exc.lines()),
            extra={"problems": exc.lines()},
        )


def _files_of_serving() -> list[str]:
    gateway = serving.current()
    return sorted(gateway.table.files) if gateway is not None else []
