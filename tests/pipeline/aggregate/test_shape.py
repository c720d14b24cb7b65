"""Pure shaping (gateway/pipeline/aggregate/shape.py)."""

from __future__ import annotations

import copy

import pytest

from gateway.pipeline.aggregate.shape import Shape, ShapeError, _tree, shape_body

BODY = {
    "data": [
        {"id": 1, "total": 5, "x": {"y": 1, "z": 2}},
        {"id": 2, "total": 7, "x": {"y": 3, "z": 4}},
    ],
    "meta": {"page": 1, "secret": "s"},
}


def shape(
    target: str = "",
    allow: tuple[str, ...] | list[str] = (),
    deny: tuple[str, ...] | list[str] = (),
    rename: dict[str, str] | None = None,
) -> Shape:
    def split(path: str) -> tuple[str, ...]:
        return tuple(path.split("."))

    return Shape(
        target=split(target) if target else (),
        allow=_tree(tuple(map(split, allow))) if allow else None,
        deny=_tree(tuple(map(split, deny))) if deny else None,
        rename=tuple((split(k), v) for k, v in (rename or {}).items()),
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (shape(), BODY),
        (shape(target="meta"), {"page": 1, "secret": "s"}),
        (shape(target="meta.page"), 1),
        (shape(allow=["meta.page"]), {"meta": {"page": 1}}),
        (shape(target="data", allow=["id"]), [{"id": 1}, {"id": 2}]),
        (
            shape(target="data", allow=["id", "x.y"]),
            [{"id": 1, "x": {"y": 1}}, {"id": 2, "x": {"y": 3}}],
        ),
        (shape(allow=["data.id"]), {"data": [{"id": 1}, {"id": 2}]}),
        (
            shape(allow=["meta", "meta.page"]),
            {"meta": {"page": 1, "secret": "s"}},
        ),  # the whole wins
        (shape(deny=["meta.secret", "data"]), {"meta": {"page": 1}}),
        (
            shape(target="data", deny=["x.z", "total"]),
            [{"id": 1, "x": {"y": 1}}, {"id": 2, "x": {"y": 3}}],
        ),
        (
            shape(target="data", allow=["id", "total"], rename={"total": "amount"}),
            [{"id": 1, "amount": 5}, {"id": 2, "amount": 7}],
        ),
        (shape(target="meta", rename={"page": "p", "nope": "q"}), {"p": 1, "secret": "s"}),
        (shape(rename={"meta.page": "p"}), {"data": BODY["data"], "meta": {"p": 1, "secret": "s"}}),
        (shape(allow=["missing"]), {}),
    ],
)
def test_shape(spec: Shape, expected: object) -> None:
    before = copy.deepcopy(BODY)
    assert shape_body(BODY, spec) == expected
    assert before == BODY  # never mutates the body


def test_rename_keeps_field_order() -> None:
    assert list(shape_body({"a": 1, "b": 2, "c": 3}, shape(rename={"b": "x"}))) == ["a", "x", "c"]


def test_missing_target_is_an_error() -> None:
    with pytest.raises(ShapeError, match=r"'data\.nope' is not in the response"):
        shape_body(BODY, shape(target="data.nope"))


def test_shaping_scalars_leaves_them_alone() -> None:
    assert shape_body([1, "a", None], shape(allow=["id"])) == [1, "a", None]
