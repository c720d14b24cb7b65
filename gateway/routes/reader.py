"""Typed reads of YAML nodes that record a problem, with its line, instead of raising.

Every method takes the node and `where` (what the value is, e.g.
"route 'users': timeout") and returns the typed value, or None after recording
a problem. Callers carry on with None so that one pass reports every mistake.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import Path

from gateway.routes.source import Node, Problem
from gateway.routes.units import parse_duration, parse_size

__all__ = ["HEADER_NAME", "NAME", "NOT_FORWARDABLE", "Reader", "did_you_mean"]

# RFC 9110 token characters.
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Names of upstreams, auth providers and routes.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,99}")
# Headers the gateway owns or that describe one hop only: never copied from a
# client, never set by an upstream's static headers or an auth provider.
NOT_FORWARDABLE = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
        "proxy-authenticate",
        "proxy-connection",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-request-id",
    }
)
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


class Reader:
    def __init__(self, base: Path | None = None) -> None:
        self.problems: list[Problem] = []
        # The routes file's directory: files it names (JSON Schemas) are read from there.
        self.base = base if base is not None else Path.cwd()
        # Every other file the routes file made the loader read (JSON Schemas):
        # live reload watches them too.
        self.files: set[Path] = set()

    def error(self, at: Node | int, where: str, message: str) -> None:
        line = at if isinstance(at, int) else at.line
        self.problems.append(Problem(line, f"{where}: {message}" if where else message))

    # --- containers --------------------------------------------------------
    def mapping(
        self,
        node: Node,
        where: str,
        allowed: Iterable[str],
        required: Iterable[str] = (),
    ) -> dict[str, Node] | None:
        if not isinstance(node.value, dict):
            self.error(node, where, f"expected a mapping, got {node.kind}")
            return None
        allowed = tuple(allowed)
        for key in node.value:
            if key not in allowed:
                self.error(
                    node.key_lines.get(key, node.line),
                    where,
                    f"unknown key {key!r}" + did_you_mean(key, allowed),
                )
        for key in required:
            if key not in node.value:
                self.error(node, where, f"missing required key {key!r}")
        return {k: v for k, v in node.value.items() if k in allowed}

    def listing(self, node: Node, where: str) -> list[Node] | None:
        if not isinstance(node.value, list):
            self.error(node, where, f"expected a list, got {node.kind}")
            return None
        return node.value

    def strings(self, node: Node, where: str, *, single_ok: bool = False) -> list[str] | None:
        if single_ok and isinstance(node.value, str):
            if node.value:
                return [node.value]
            self._empty(node, where)
            return None
        items = self.listing(node, where)
        if items is None:
            return None
        out = []
        for i, item in enumerate(items):
            text = self.string(item, f"{where}[{i}]")
            if text is not None:
                out.append(text)
        return out if len(out) == len(items) else None

    def string_map(self, node: Node, where: str) -> dict[str, str] | None:
        if not isinstance(node.value, dict):
            self.error(node, where, f"expected a mapping, got {node.kind}")
            return None
        out = {}
        for key, value in node.value.items():
            text = self.string(value, f"{where}.{key}", allow_empty=True, coerce=True)
            if text is not None:
                out[key] = text
        return out if len(out) == len(node.value) else None

    # --- scalars -------------------------------------------------------------
    def string(
        self, node: Node, where: str, *, allow_empty: bool = False, coerce: bool = False
    ) -> str | None:
        value = node.value
        if coerce and isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if node.failed:
            return None  # its problem (an unset ${VAR}) is reported already
        if not isinstance(value, str):
            self.error(node, where, f"expected a string, got {node.kind}{_braces_hint(node)}")
            return None
        if not value and not allow_empty:
            self._empty(node, where)
            return None
        return value

    def boolean(self, node: Node, where: str) -> bool | None:
        if node.failed:
            return None
        if not isinstance(node.value, bool):
            self.error(node, where, f"expected true or false, got {node.kind}")
            return None
        return node.value

    def integer(self, node: Node, where: str, *, minimum: int = 1) -> int | None:
        if node.failed:
            return None
        value = node.value
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if not isinstance(value, int) or isinstance(value, bool):
            self.error(node, where, f"expected a whole number, got {node.kind}")
            return None
        if value < minimum:
            self.error(node, where, f"must be at least {minimum}, got {value}")
            return None
        return value

    def duration(self, node: Node, where: str) -> float | None:
        """`250ms`, `2s`, `1m`, `1h` or a bare number of seconds; must be > 0."""
        if node.failed:
            return None
        value = node.value
        seconds = parse_duration(value)
        if seconds is None:
            self.error(node, where, f"invalid duration {value!r} (use e.g. 250ms, 2s, 1m, 1h)")
            return None
        if seconds <= 0:
            self.error(node, where, "must be greater than zero")
            return None
        return seconds

    def size(self, node: Node, where: str) -> int | None:
        """`512KiB`, `1MiB`, `1GiB` (or KB/MB/GB) or a number of bytes; must be > 0."""
        if node.failed:
            return None
        value = node.value
        size = parse_size(value)
        if size is None:
            self.error(node, where, f"invalid size {value!r} (use e.g. 512KiB, 1MiB or bytes)")
            return None
        if size <= 0:
            self.error(node, where, "must be greater than zero")
            return None
        return size

    def header_name(self, node: Node, where: str) -> str | None:
        name = self.string(node, where)
        if name is None:
            return None
        if not HEADER_NAME.fullmatch(name):
            self.error(node, where, f"{name!r} is not a valid header name")
            return None
        return name.lower()

    def owned_header(self, node: Node, where: str) -> str | None:
        """A header the gateway will set for backends (an identity header)."""
        name = self.header_name(node, where)
        if name is not None and name in NOT_FORWARDABLE:
            self.error(node, where, "this header is set by the gateway")
            return None
        return name

    def header_value(self, node: Node, where: str, value: str) -> str | None:
        if not _HEADER_VALUE.fullmatch(value):
            self.error(node, where, "header values may not contain control characters")
            return None
        return value.strip()

    def _empty(self, node: Node, where: str) -> None:
        self.error(node, where, "must not be empty")
        return


def _braces_hint(node: Node) -> str:
    """`{sku}` unquoted is a YAML mapping ({sku: null}): say so."""
    value = node.value
    if isinstance(value, dict) and value and all(v.value is None for v in value.values()):
        name = next(iter(value))
        return f' (unquoted {{{name}}} is a YAML mapping: write "{{{name}}}" in quotes)'
    return ""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest of `choices`, or nothing."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.7)
    return f" (did you mean {found[0]!r}?)" if found else ""
