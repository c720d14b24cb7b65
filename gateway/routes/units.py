"""Durations and sizes as operators write them, in the routes file and in settings.

Durations: `250ms`, `2s`, `1m`, `1h`, or a bare number of seconds.
Sizes: `512KiB`, `1MiB`, `1GiB` (or KB/MB/GB, powers of ten), or a number of bytes.
Both return None for text that is neither; callers say what was expected.
"""

from __future__ import annotations

import re

__all__ = ["parse_duration", "parse_size"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)?")
_DURATION_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE = re.compile(r"(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?")
_SIZE_UNITS = {
    None: 1,
    "B": 1,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
}


def parse_duration(value: object) -> float | None:
    """Seconds, or None when `value` is not a duration (a bool is not one)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and (m := _DURATION.fullmatch(value.strip())):
        return float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    return None


def parse_size(value: object) -> int | None:
    """Bytes, or None when `value` is not a size."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and (m := _SIZE.fullmatch(value.strip())):
        return int(m.group(1)) * _SIZE_UNITS[m.group(2)]
    return None
