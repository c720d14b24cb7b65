"""YAML text -> a tree of `Node`s that remember their line.

Parsing is safe: PyYAML's SafeLoader composes the document, only the standard
tags are accepted, anchors may be used but a document that expands past
`MAX_NODES` nodes (a "billion laughs") is refused, duplicate keys are errors,
and `${NAME}` / `${NAME:-default}` are substituted in string scalars.
Every problem becomes a `Problem(line, message)`; nothing here raises for bad input.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = ["MAX_NODES", "Node", "Problem", "parse_yaml"]

MAX_NODES = 100_000
_ENV_REF = re.compile(r"\$(\$)|\$\{([^}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STANDARD_TAGS = frozenset(
    "tag:yaml.org,2002:" + t
    for t in ("str", "int", "float", "bool", "null", "map", "seq", "merge", "timestamp")
)


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    message: str


type Scalar = str | int | float | bool | None


@dataclass(slots=True, eq=False)
class Node:
    """A YAML node: `value` is a scalar, a list of Nodes or a dict of Nodes."""

    value: Scalar | list[Node] | dict[str, Node]
    line: int
    key_lines: dict[str, int] = field(default_factory=dict)
    # A problem was already reported for this value (an unset `${VAR}`): the
    # readers skip it quietly, so one cause gives one error.
    failed: bool = False

    def plain(self) -> Any:
        """The value as plain Python data (for values the file passes on as
        they are written: a static route's body, a JSON Schema)."""
        value = self.value
        if isinstance(value, dict):
            return {key: child.plain() for key, child in value.items()}
        if isinstance(value, list):
            return [child.plain() for child in value]
        return value

    @property
    def kind(self) -> str:
        v = self.value
        if isinstance(v, dict):
            return "mapping"
        if isinstance(v, list):
            return "list"
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "boolean"
        if isinstance(v, int | float):
            return "number"
        return "string"


class _Converter:
    def __init__(
        self, environ: Mapping[str, str], problems: list[Problem], secrets: set[str]
    ) -> None:
        self.environ = environ
        self.problems = problems
        self.secrets = secrets
        self.budget = MAX_NODES
        self.constructor = yaml.SafeLoader("")

    def convert(self, node: yaml.Node) -> Node:
        line = node.start_mark.line + 1
        self.budget -= 1
        if self.budget < 0:
            raise _TooLarge(line)
        if node.tag not in _STANDARD_TAGS:
            self.problems.append(Problem(line, f"unsupported YAML tag {node.tag!r}"))
            return Node(None, line)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, line)
        if isinstance(node, yaml.SequenceNode):
            return Node([self.convert(item) for item in node.value], line)
        return self._scalar(node, line)

    def _mapping(self, node: yaml.MappingNode, line: int) -> Node:
        try:
            self.constructor.flatten_mapping(node)
        except yaml.YAMLError as exc:
            self.problems.append(Problem(line, f"invalid merge key: {_first_line(exc)}"))
            return Node({}, line)
        items: dict[str, Node] = {}
        key_lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _STANDARD_TAGS:
                self.problems.append(Problem(key_line, "mapping keys must be plain strings"))
                continue
            key = str(key_node.value)
            if key in items:
                self.problems.append(Problem(key_line, f"duplicate key {key!r}"))
                continue
            items[key] = self.convert(value_node)
            key_lines[key] = key_line
        return Node(items, line, key_lines)

    def _scalar(self, node: yaml.Node, line: int) -> Node:
        try:
            value = self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.problems.append(Problem(line, f"invalid value: {_first_line(exc)}"))
            return Node(None, line)
        if isinstance(value, str):
            reported = len(self.problems)
            text = self._substitute(value, line)
            return Node(text, line, failed=len(self.problems) > reported)
        if value is None or isinstance(value, bool | int | float):
            return Node(value, line)
        # Timestamps and the like: keep the text the operator wrote.
        return Node(str(node.value), line)

    def _substitute(self, text: str, line: int) -> str:
        if "$" not in text:
            return text

        def replace(match: re.Match[str]) -> str:
            if match.group(1):  # "$$" is a literal "$"
                return "$"
            ref = match.group(2)
            name, has_default, default = ref.partition(":-")
            if not _ENV_NAME.fullmatch(name):
                self.problems.append(Problem(line, f"invalid variable reference ${{{ref}}}"))
                return ""
            value = self.environ.get(name)
            if value is None or (has_default and value == ""):
                if has_default:
                    return default
                self.problems.append(Problem(line, f"environment variable {name} is not set"))
                return ""
            if value:
                self.secrets.add(value)
            return value

        return _ENV_REF.sub(replace, text)


class _TooLarge(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


def _likely_cause(problem: str, written: str) -> str:
    """What usually causes this PyYAML error on a line like this one."""
    if "\t" in problem or written.lstrip(" ").startswith("\t"):
        return " (YAML indents with spaces, not tabs)"
    if "'{'" in problem or re.search(r"[\w/]\{\w", written):
        return (
            ' (a value holding { } must be quoted: path: "/v2/{rest}", or in a'
            ' {...} mapping: {path: "/v2/{rest}"})'
        )
    if "mapping values are not allowed" in problem:
        if written.count(": ") + written.rstrip().endswith(":") > 1:
            return " (a value holding ': ' must be quoted)"
        return " (check this line's indentation against the line above)"
    if "expected <block end>" in problem or "did not find expected" in problem:
        return " (check this line's indentation against the lines above)"
    if "quoted scalar" in problem:
        return " (a quote opened and never closed)"
    return ""


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "problem", None) or str(exc)
    return str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__


def parse_yaml(
    text: str, environ: Mapping[str, str] | None = None, secrets: set[str] | None = None
) -> tuple[Node | None, list[Problem]]:
    """Parse one YAML document. Returns the root node (None if unusable) and
    problems; every value taken from the environment is added to `secrets`
    (what the admin listener never shows)."""
    problems: list[Problem] = []
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        lines = text.splitlines()
        written = lines[line - 1] if 0 < line <= len(lines) else ""
        hint = _likely_cause(f"{exc.context or ''} {exc.problem or ''}", written)
        problems.append(Problem(line, f"YAML syntax error: {_first_line(exc)}{hint}"))
        return None, problems
    except yaml.YAMLError as exc:
        problems.append(Problem(1, f"YAML error: {_first_line(exc)}"))
        return None, problems
    if root is None:
        problems.append(Problem(1, "the file is empty"))
        return None, problems
    converter = _Converter(
        os.environ if environ is None else environ, problems, set() if secrets is None else secrets
    )
    try:
        return converter.convert(root), problems
    except _TooLarge as exc:
        problems.append(
            Problem(exc.line, f"the document expands past {MAX_NODES} nodes (alias bomb?)")
        )
        return None, problems
    except RecursionError:
        problems.append(Problem(1, "the document is nested too deeply"))
        return None, problems
