"""The routes file: `load_route_table(path, vocabulary)` -> a frozen
`RouteTable`, or `RoutesFileError` carrying every problem, each with its line.

The vocabulary is what the registered kinds and policies read
(gateway/routes/vocabulary.py); gateway/registry.py binds these functions to
the registered one."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from gateway.routes.document import read_document
from gateway.routes.model import *  # noqa: F403
from gateway.routes.model import RouteTable
from gateway.routes.reader import Reader
from gateway.routes.source import Problem, parse_yaml
from gateway.routes.vocabulary import Vocabulary

__all__ = [
    "Problem",
    "RoutesFileError",
    "files_digest",
    "load_route_table",
    "parse_route_table",
    "parse_routes_file",
    "read_routes_file",
]

MAX_FILE_SIZE = 4 * 1024 * 1024


class RoutesFileError(Exception):
    """The routes file is missing, unreadable or invalid. `lines()` gives
    `PATH:LINE: message`, one per problem, in file order."""

    def __init__(self, path: str, problems: list[Problem]) -> None:
        self.path = path
        self.problems = sorted(problems, key=lambda p: p.line)
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [
            f"{self.path}:{p.line}: {p.message}" if p.line else f"{self.path}: {p.message}"
            for p in self.problems
        ]


def parse_route_table(text: str, vocabulary: Vocabulary, source: str = "routes.yaml") -> RouteTable:
    """Parse routes-file text (with `${VAR}` taken from the environment)."""
    secrets: set[str] = set()
    root, problems = parse_yaml(text, secrets=secrets)
    if root is None:
        raise RoutesFileError(source, problems)
    # absolute, not resolved: beside a ConfigMap's routes.yaml symlink, schemas are
    # read through the same ..data link, so a swap is seen in both
    reader = Reader(base=Path(source).absolute().parent)
    reader.problems.extend(problems)
    table = read_document(reader, root, source, vocabulary)
    if reader.problems or table is None:
        raise RoutesFileError(source, reader.problems or [Problem(1, "invalid routes file")])
    files = sorted(str(p) for p in reader.files)
    return dataclasses.replace(
        table,
        secrets=frozenset(secrets),
        files=frozenset(files),
        files_digest=files_digest(files),  # read right after the loader read them
    )


def files_digest(files: list[str]) -> bytes:
    """One digest of the files' bytes (a missing one counts as such): what
    live reload compares to see that a schema or certificate changed."""
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode() + b"\0")
        try:
            digest.update(Path(name).read_bytes())
        except OSError:
            digest.update(b"\0missing")
    return digest.digest()


def read_routes_file(path: str | Path) -> bytes:
    """The file's bytes (at most MAX_FILE_SIZE + 1 of them: parsing refuses more)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_FILE_SIZE + 1)
    except OSError as exc:
        raise RoutesFileError(
            str(path), [Problem(0, f"cannot read the routes file: {exc.strerror}")]
        ) from None


def parse_routes_file(data: bytes, name: str, vocabulary: Vocabulary) -> RouteTable:
    """Parse the bytes `read_routes_file` returned for the file called `name`."""
    if len(data) > MAX_FILE_SIZE:
        raise RoutesFileError(name, [Problem(1, f"larger than {MAX_FILE_SIZE} bytes")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RoutesFileError(name, [Problem(line, "not valid UTF-8")]) from None
    return parse_route_table(text, vocabulary, name)


def load_route_table(path: str | Path, vocabulary: Vocabulary) -> RouteTable:
    """Read and parse the routes file at `path`."""
    return parse_routes_file(read_routes_file(path), str(path), vocabulary)
