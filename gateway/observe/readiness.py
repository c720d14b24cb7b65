"""Readiness, as both listeners answer /readyz."""

from __future__ import annotations

from gateway import serving
from gateway.lifecycle import lifecycle

__all__ = ["PROBES", "readiness"]

# The probe paths, on both listeners. They are logged, never traced: a
# kubelet's probe every few seconds is not traffic anybody follows.
PROBES = frozenset({"/healthz", "/readyz"})


async def readiness() -> tuple[int, str]:
    """(200, "") when a routes table is loaded, Redis (if any) answers and the
    process is not draining; else (503, why)."""
    gateway = serving.current()
    if gateway is None:
        return 503, "no routes are loaded"
    if lifecycle.draining:
        return 503, "shutting down"
    if not await gateway.runtime.redis_ready():
        return 503, "redis does not answer"
    return 200, ""
