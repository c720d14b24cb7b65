"""YAML parsing: lines, safety, env substitution (gateway/routes/source.py)."""

from __future__ import annotations

import pytest

from gateway.routes.source import MAX_NODES, Problem, parse_yaml


def messages(text: str, env: dict[str, str] | None = None) -> list[Problem]:
    return parse_yaml(text, env or {})[1]


def test_nodes_remember_their_lines() -> None:
    root, problems = parse_yaml("a: 1\nb:\n  - x\n  - {c: 2}\n", {})
    assert problems == []
    assert root is not None
    assert isinstance(root.value, dict)
    assert root.value["b"].line == 3
    assert root.key_lines == {"a": 1, "b": 2}
    items = root.value["b"].value
    assert isinstance(items, list)
    assert items[1].line == 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: ${X}", "value"),
        ("a: pre-${X}-post", "pre-value-post"),
        ("a: ${MISSING:-fallback}", "fallback"),
        ("a: ${EMPTY:-fallback}", "fallback"),
        ("a: $${X}", "${X}"),
        ("a: cost $5", "cost $5"),
    ],
)
def test_environment_substitution(text: str, expected: str) -> None:
    root, problems = parse_yaml(text, {"X": "value", "EMPTY": ""})
    assert problems == []
    assert root is not None
    assert isinstance(root.value, dict)
    assert root.value["a"].value == expected


def test_unset_variable_is_an_error_on_its_line() -> None:
    assert messages("a: 1\nb: ${NOPE}\n") == [Problem(2, "environment variable NOPE is not set")]


def test_substitution_does_not_touch_keys_or_numbers() -> None:
    root, _ = parse_yaml("${X}: 5\n", {"X": "y"})
    assert root is not None
    assert isinstance(root.value, dict)
    assert list(root.value) == ["${X}"]


def test_duplicate_keys_are_errors() -> None:
    assert messages("a: 1\nb: 2\na: 3\n") == [Problem(3, "duplicate key 'a'")]


@pytest.mark.parametrize(
    "text", ["a: !!python/object:os.system ls", "a: !custom x", "a: !!binary aGk="]
)
def test_only_standard_tags(text: str) -> None:
    (problem,) = messages(text)
    assert "unsupported YAML tag" in problem.message


def test_alias_bomb_is_refused() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 7):
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    (problem,) = messages("\n".join(lines))
    assert str(MAX_NODES) in problem.message


def test_merge_keys_work() -> None:
    root, problems = parse_yaml("base: &b {timeout: 2s}\nu: {<<: *b, url: x}\n", {})
    assert problems == []
    assert root is not None
    assert isinstance(root.value, dict)
    merged = root.value["u"].value
    assert isinstance(merged, dict)
    assert set(merged) == {"timeout", "url"}


def test_syntax_error_has_a_line() -> None:
    (problem,) = messages("a: 1\nb: [1, 2\nc: 3\n")
    assert problem.line in (2, 3)
    assert problem.message.startswith("YAML syntax error")


def test_empty_document() -> None:
    assert messages("") == [Problem(1, "the file is empty")]


def test_syntax_errors_name_their_likely_cause() -> None:
    cases = {
        "r:\n  - proxy: {upstream: b, path: /v2/{rest}}\n": (2, "must be quoted"),
        "r:\n\t- name: a\n": (2, "spaces, not tabs"),
        "r:\n  - name: a\n     path: /x\n": (3, "indentation"),
        "u:\n  users:\n    url: x\n   timeout: 2s\n": (4, "indentation"),
        "a: b: c\n": (1, "': ' must be quoted"),
        'a: "abc\nb: 1\n': (3, "never closed"),
    }
    for text, (line, hint) in cases.items():
        _, problems = parse_yaml(text, {})
        assert [p.line for p in problems] == [line], text
        assert hint in problems[0].message, problems[0].message


def test_an_unset_variable_is_one_error_and_marks_its_value() -> None:
    root, problems = parse_yaml("url: ${NOPE}\nok: ${SET}\n", {"SET": "x"})
    assert [p.message for p in problems] == ["environment variable NOPE is not set"]
    assert root is not None and isinstance(root.value, dict)
    assert root.value["url"].failed and not root.value["ok"].failed
