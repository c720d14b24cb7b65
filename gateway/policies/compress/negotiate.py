"""Which encoding a client gets: `Accept-Encoding` with q-values (RFC 9110
12.5.3) against the route's `algorithms`, and whether a type is compressible.

The highest q-value wins; `q=0` refuses; `*` stands for every encoding the
header does not name; among equal q-values the first of `algorithms` wins.
Results are kept per header value (clients send a handful of them).
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["choose", "type_matches"]


@lru_cache(maxsize=1024)
def choose(accept_encoding: str, algorithms: tuple[str, ...]) -> str | None:
    """The encoding to use, or None (identity)."""
    weights: dict[str, float] = {}
    for item in accept_encoding.split(",")[:64]:
        coding, *params = (part.strip() for part in item.split(";"))
        coding = coding.lower()
        if not coding:
            continue
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value.strip())
                except ValueError:
                    weight = 0.0
                if not 0.0 <= weight <= 1.0:
                    weight = 0.0
        if coding == "x-gzip":
            coding = "gzip"
        weights[coding] = max(weight, weights[coding]) if coding in weights else weight
    best, best_weight = None, 0.0
    for algorithm in algorithms:
        weight = weights.get(algorithm, weights.get("*", 0.0))
        if weight > best_weight:
            best, best_weight = algorithm, weight
    return best


@lru_cache(maxsize=1024)
def type_matches(content_type: str, types: tuple[str, ...]) -> bool:
    """`application/json; charset=utf-8` against `application/json`, `text/*`,
    `application/*+json`."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if not kind:
        return False
    major, _, minor = kind.partition("/")
    for pattern in types:
        if pattern == kind:
            return True
        p_major, _, p_minor = pattern.partition("/")
        if p_major != major and p_major != "*":
            continue
        if p_minor == "*":
            return True
        if p_minor.startswith("*") and minor.endswith(p_minor[1:]):
            return True
    return False
