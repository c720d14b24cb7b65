"""The C allocator under a process whose large buffers come and go.

Aggregate routes read, parse and serialise bodies of up to megabytes; glibc's
malloc serves allocations below its mmap threshold from its heap, and by
default raises that threshold (up to 32 MiB) each time it frees a large block.
Megabyte buffers then land in the heap, and what they leave behind when freed
stays in the process (measured: 916 MB resident with nothing alive, after a
burst the memory budget had capped at 512 MiB). So, on glibc:

- `tune()` fixes the mmap threshold at MMAP_THRESHOLD: every larger buffer is
  its own mapping, returned to the system the moment it is freed;
- `trim()` (once a second, from the lifespan's housekeeping) gives the heap's
  free pages back.

Elsewhere (musl, macOS) both do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time

__all__ = ["MMAP_THRESHOLD", "trim", "tune"]

MMAP_THRESHOLD = 256 * 1024
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
TRIM_EVERY_SECONDS = 5.0

_libc: ctypes.CDLL | None = None
_last_trim = 0.0


def _glibc() -> ctypes.CDLL | None:
    global _libc
    if _libc is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            libc.gnu_get_libc_version  # noqa: B018  (glibc only)
        except (OSError, AttributeError):
            return None
        _libc = libc
    return _libc


def tune() -> bool:
    libc = _glibc()
    if libc is None:
        return False
    libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    libc.mallopt(_M_TRIM_THRESHOLD, 4 * MMAP_THRESHOLD)
    return True


def trim() -> None:
    """Give free heap pages back, at most every TRIM_EVERY_SECONDS."""
    global _last_trim
    libc = _glibc()
    now = time.monotonic()
    if libc is not None and now - _last_trim >= TRIM_EVERY_SECONDS:
        _last_trim = now
        libc.malloc_trim(0)
