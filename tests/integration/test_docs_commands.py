"""Every command the README and docs/ print works as printed, in bash and zsh
(issue 14): the `$ ` lines of their ```console blocks, run against what
`make run` starts (the demo upstreams and the sample routes.yaml), their
output compared with the printed output loosely (ids, dates and counters
vary; a `...` line stands for lines left out), and every inline command of
the prose (`curl ...`, `.venv/bin/...`, `kubectl ...`) either run the same
way or listed in NOT_RUN with the reason it cannot run here.

The commands talk to localhost:8000, as printed. When port 8000 is taken on
the machine running the tests, the gateway gets a free port and the commands
get that port in place of 8000 (the only rewrite).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import Gateway, GatewayFactory
from tests.integration.test_demo import start_demo
from tests.processes import PYTHON, ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELLS = [shell for shell in ("bash", "zsh") if shutil.which(shell)]

# Commands that cannot run inside a test, each with the reason; matched by prefix.
NOT_RUN = {
    "make run": "starts the demo itself: the fixture here starts the same processes",
    "make test": "this is make test",
    "make bench": "minutes of load on both cores; it is its own command",
    "BENCH_ONLY=": "make bench, one group of it: minutes of load",
    "BENCH_AGAINST=": "make bench against another checkout: minutes of load",
    "make lock": "re-pins every dependency from the network",
    "python -X perf": "a flag named in prose, not a command line",
    ".venv/bin/python manage.py check_routes [PATH]": "a synopsis ([PATH] is optional); routes.md runs it",
    "curl -sN localhost:8000/events/ticks": "an endless event stream (tests/integration/test_demo.py reads it)",
    ".venv/bin/python -m websockets": "an interactive WebSocket client (test_demo.py speaks to /ws/echo)",
    "PYTHONPATH=examples/hooks": "names my-routes.yaml, a file the reader writes (examples/hooks/tests run the hook)",
    "cd ~/src/acme-hooks": "a hooks package of the reader's own (tests/hooks/test_package.py builds one)",
    "python3.13 -m venv .venv && .venv/bin/pip install -e '.[test]'": "installs into the reader's package (tests/hooks/test_package.py does the same)",
    ".venv/bin/pytest": "run inside the reader's hooks package (tests/hooks/test_package.py)",
    ".venv/bin/mypy": "run inside the reader's hooks package (tests/hooks/test_package.py)",
    "pip wheel --no-deps": "builds a wheel (tests/hooks/test_package.py builds one)",
    "make install": "installs the development pins (make test does it first)",
    "docker ": "needs a Docker daemon; tests/deploy checks the Dockerfile offline",
    "kubectl ": "needs a cluster; tests/deploy renders and validates the manifests offline",
    "ACME_API_KEY_SHA256=... ": "a placeholder value; tests/deploy checks the same file with one",
    "UPDATE_SCREENSHOTS=1": "rewrites docs/img (tests/integration/test_dashboard_browser.py)",
}
INLINE = re.compile(
    r"`((?:curl|\.venv/bin/|make |kubectl |docker |python3? |[A-Z_]+=[^\s`]+ )[^`]*)`"
)


@dataclass
class Command:
    source: str  # file:line
    text: str
    expected: list[str]

    @property
    def skipped(self) -> str | None:
        return next((why for prefix, why in NOT_RUN.items() if self.text.startswith(prefix)), None)


def console_commands(path: Path) -> Iterator[Command]:
    """Console blocks, indented ones (inside a list item) too."""
    lines = path.read_text().splitlines()
    inside = False
    indent = 0
    current: Command | None = None
    for number, raw in enumerate(lines, 1):
        if raw.lstrip().startswith("```"):
            if current is not None:
                yield current
                current = None
            inside = raw.strip() == "```console"
            indent = len(raw) - len(raw.lstrip())
            continue
        if not inside:
            continue
        line = raw[indent:]
        if line.startswith("$ "):
            if current is not None:
                yield current
            current = Command(f"{path.name}:{number}", line[2:], [])
        elif current is not None and current.text.endswith("\\"):
            current.text = current.text[:-1].rstrip() + " " + line.strip()
        elif current is not None:
            current.expected.append(line)


def inline_commands(path: Path) -> Iterator[Command]:
    text = path.read_text()
    in_block = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_block = not in_block
            continue
        if not in_block:
            for found in INLINE.finditer(line):
                yield Command(f"{path.name}:{number}", found[1], [])


def all_commands() -> list[Command]:
    return [c for doc in DOCS for c in (*console_commands(doc), *inline_commands(doc))]


COMMANDS = all_commands()


def test_the_docs_hold_commands_and_each_is_run_or_excused() -> None:
    assert len([c for c in COMMANDS if c.text.startswith("curl")]) >= 7
    runnable = [c for c in COMMANDS if not c.skipped]
    assert len(runnable) >= 8
    for command in COMMANDS:
        assert not command.text.startswith("python manage.py"), (
            f"{command.source}: use .venv/bin/python (a fresh clone has no Django on python)"
        )


# --- the demo, as make run starts it ------------------------------------------------
def port_8000_free() -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 8000))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def demo_gateway(
    start_gateway: GatewayFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    demo, env = start_demo(tmp_path_factory.mktemp("demo"))
    gateway = start_gateway((ROOT / "routes.yaml").read_text(), **env)
    yield gateway
    demo.stop()


def run(command: Command, shell: str, gateway: Gateway) -> subprocess.CompletedProcess[str]:
    text = command.text.replace("localhost:8000", f"localhost:{gateway.process.port}")
    venv_bin = str(Path(PYTHON).parent)
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [shell, "-c", text], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


# Values that differ from run to run (x-cache: the printed MISS is the first
# call's; each command runs once per shell, so the second finds the entry).
VOLATILE_HEADERS = {
    "date",
    "content-length",
    "x-request-id",
    "ratelimit-remaining",
    "ratelimit-reset",
    "x-cache",
}


def same_output(expected: list[str], actual: str) -> str | None:
    """None when `actual` matches the printed lines loosely, else why not."""
    got = actual.replace("\r\n", "\n").rstrip("\n").split("\n") if actual.strip() else []
    if expected and expected[0].startswith("HTTP/1.1 "):
        return same_http(expected, got)
    want_text, got_text = "\n".join(expected), "\n".join(got)
    try:  # one JSON document (pretty-printed or not)
        return None if _json(want_text) == _json(got_text) else f"{got_text!r}"
    except ValueError:
        pass
    if len(expected) == len(got) and all(
        _line_matches(w, g) for w, g in zip(expected, got, strict=True)
    ):
        return None
    return f"printed {expected!r}, got {got!r}"


def same_http(expected: list[str], got: list[str]) -> str | None:
    if not got or got[0].strip() != expected[0].strip():
        return f"status {got[:1]!r}, printed {expected[0]!r}"
    blank = got.index("") if "" in got else len(got)
    got_headers = {
        line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip() for line in got[1:blank]
    }
    want_blank = expected.index("") if "" in expected else len(expected)
    printed = expected[1:want_blank]
    elided = "..." in printed
    want_headers = {
        line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip()
        for line in printed
        if ":" in line
    }
    body_want = [line for line in expected[want_blank:] if line and line != "..."]
    if elided and not body_want:  # "..." then the body on the next line, no blank printed
        after = printed[printed.index("...") + 1 :]
        body_want = [line for line in after if ":" not in line or line.startswith(("{", "["))]
        want_headers = {
            k: v
            for k, v in want_headers.items()
            if not any(line.startswith(k) for line in body_want)
        }
    missing = set(want_headers) - set(got_headers)
    if missing:
        return f"printed headers not in the answer: {sorted(missing)}"
    if not elided and set(got_headers) - set(want_headers):
        return f"headers left out without a '...': {sorted(set(got_headers) - set(want_headers))}"
    for name, value in want_headers.items():
        if name not in VOLATILE_HEADERS and got_headers[name] != value:
            return f"{name}: {got_headers[name]!r}, printed {value!r}"
    body_got = [line for line in got[blank + 1 :] if line]
    if body_want:
        try:
            if _json("\n".join(body_want)) != _json("\n".join(body_got)):
                return f"body {body_got!r}"
        except ValueError:
            if body_want != body_got:
                return f"body {body_got!r}"
    return None


def _json(text: str) -> object:
    """JSON (or NDJSON) with the values that vary blanked."""
    try:
        documents = [json.loads(text)]
    except ValueError:
        documents = [json.loads(line) for line in text.splitlines()]
    return [_blank(d) for d in documents]


def _blank(value: object) -> object:
    if isinstance(value, dict):
        return {k: "*" if k in ("request_id",) else _blank(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_blank(v) for v in value]
    return value


def _line_matches(want: str, got: str) -> bool:
    pattern = re.escape(want)
    pattern = re.sub(r"[0-9a-f]{32}", "[0-9a-f]{32}", pattern)
    return re.fullmatch(pattern, got) is not None


@pytest.mark.parametrize("shell", SHELLS or ["bash"])
@pytest.mark.parametrize(
    "command", [c for c in COMMANDS if not c.skipped], ids=lambda c: f"{c.source}"
)
def test_every_printed_command_works_as_printed(
    command: Command, shell: str, demo_gateway: Gateway
) -> None:
    if not shutil.which(shell):
        pytest.skip(f"no {shell} here (make test installs zsh)")
    result = run(command, shell, demo_gateway)
    assert result.returncode == 0, f"{command.source}: {command.text}\n{result.stderr}"
    if command.expected:
        problem = same_output(command.expected, result.stdout)
        assert problem is None, f"{command.source}: {command.text}\n{problem}"


def test_the_comparison_is_loose_only_where_it_says() -> None:
    printed = ["HTTP/1.1 200 OK", "content-type: application/json", "date: x", "", '{"a": 1}']
    answer = 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ndate: y\r\n\r\n{"a":1}'
    assert same_output(printed, answer) is None  # a date varies
    assert same_output(printed, answer.replace("200 OK", "404 Not Found")) is not None
    assert same_output(printed, answer.replace('"a":1', '"a":2')) is not None
    extra = answer.replace("date: y", "date: y\r\nx-extra: 1")
    assert "left out" in (same_output(printed, extra) or "")  # an unprinted header, no "..."
    assert same_output([*printed[:3], "...", *printed[3:]], extra) is None
    assert same_output(["OK: 6 routes"], "OK: 7 routes") is not None
    assert same_output(['{"request_id": "1"}'], '{"request_id": "2"}') is None
