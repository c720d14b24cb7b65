"""Shadow comparison (gateway/policies/mirror/diff.py)."""

from __future__ import annotations

import orjson

from gateway.policies.mirror.diff import MAX_DIFFERENCES, compare, without


def body(value: object) -> bytes:
    return orjson.dumps(value)


def test_equal_answers_have_no_differences() -> None:
    a = body({"id": 1, "items": [{"n": 1}]})
    assert compare((200, a), (200, a)) == []


def test_status_and_field_differences_name_their_paths() -> None:
    a = body({"id": 1, "user": {"name": "a", "tags": ["x"]}})
    b = body({"id": 1, "user": {"name": "b", "tags": ["x", "y"]}, "extra": True})
    differences = compare((200, a), (500, b))
    assert differences[0] == ("(status)", 200, 500)
    paths = [d[0] for d in differences[1:]]
    assert paths == ["user.name", "user.tags.1", "extra"]


def test_ignore_paths_skip_fields_in_objects_and_in_every_list_item() -> None:
    a = body({"meta": {"at": 1, "v": 2}, "items": [{"id": 1, "at": 5}, {"id": 2, "at": 6}]})
    b = body({"meta": {"at": 9, "v": 2}, "items": [{"id": 1, "at": 7}, {"id": 2, "at": 8}]})
    assert compare((200, a), (200, b), (("meta", "at"), ("items", "at"))) == []
    assert [d[0] for d in compare((200, a), (200, b), (("meta", "at"),))] == [
        "items.0.at",
        "items.1.at",
    ]


def test_a_number_in_a_path_picks_one_item() -> None:
    assert without([{"a": 1}, {"a": 2}], ("1", "a")) == [{"a": 1}, {}]
    assert without({"x": [1, 2]}, ("x", "0")) == {"x": [2]}
    assert without({"x": 1}, ("y", "z")) == {"x": 1}


def test_bodies_that_are_not_json_are_compared_as_bytes() -> None:
    assert compare((200, b"hello"), (200, b"hello")) == []
    assert compare((200, b"hello"), (200, b"world")) == [("(body)", "hello", "world")]


def test_a_body_too_large_to_keep_is_compared_by_status_only() -> None:
    assert compare((200, None), (200, b"{}")) == []
    assert compare((200, None), (404, b"{}")) == [("(status)", 200, 404)]


def test_a_type_change_is_a_difference_and_the_list_is_bounded() -> None:
    assert compare((200, b'{"n": 1}'), (200, b'{"n": 1.0}')) == [("n", 1, 1.0)]
    many_a = body({str(i): i for i in range(100)})
    many_b = body({str(i): -i for i in range(100)})
    assert len(compare((200, many_a), (200, many_b))) == MAX_DIFFERENCES
