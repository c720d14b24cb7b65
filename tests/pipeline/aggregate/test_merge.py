"""Outcomes -> body, completeness or the route's failure (gateway/pipeline/aggregate/merge.py)."""

from __future__ import annotations

import pytest

from gateway.errors import BackendFailed
from gateway.pipeline.aggregate.merge import merge_outcomes
from gateway.pipeline.aggregate.outcome import Outcome
from gateway.types import Failure


def ok(name: str, body: object, required: bool = True) -> Outcome:
    return Outcome(name, required, body=body)


def failed(
    name: str, failure: Failure, required: bool = True, status: int | None = None
) -> Outcome:
    return Outcome(name, required, failure=failure, status=status)


def test_all_succeed() -> None:
    body, completed = merge_outcomes([ok("a", {"x": 1}), ok("b", [1])], ["a", "b"], single=False)
    assert body == {"a": {"x": 1}, "b": [1]}
    assert completed


def test_top_level_merge_in_list_order() -> None:
    body, _ = merge_outcomes(
        [ok("a", {"x": 1, "y": 1}), ok("b", {"y": 2})], [None, None], single=False
    )
    assert body == {"x": 1, "y": 2}


def test_single_backend_without_key_is_returned_as_is() -> None:
    assert merge_outcomes([ok("a", [1, 2])], [None], single=True) == ([1, 2], True)


def test_optional_failure_is_left_out() -> None:
    body, completed = merge_outcomes(
        [ok("a", 1), failed("b", Failure.TIMEOUT, required=False)], ["a", "b"], single=False
    )
    assert body == {"a": 1}
    assert not completed


@pytest.mark.parametrize(
    ("failure", "status", "expected"),
    [
        (Failure.TIMEOUT, None, 504),
        (Failure.CIRCUIT_OPEN, None, 503),
        (Failure.STATUS, 404, 404),
        (Failure.STATUS, 429, 429),
        (Failure.STATUS, 500, 502),
        (Failure.CONNECT, None, 502),
        (Failure.INVALID, 200, 502),
        (Failure.TOO_LARGE, 200, 502),
        (Failure.REDIRECT, 302, 502),
    ],
)
def test_required_failure_status(failure: Failure, status: int | None, expected: int) -> None:
    with pytest.raises(BackendFailed) as caught:
        merge_outcomes(
            [ok("a", 1, required=False), failed("b", failure, status=status)],
            ["a", "b"],
            single=False,
        )
    assert caught.value.status == expected
    assert caught.value.backend == "b"


def test_first_required_failure_decides() -> None:
    outcomes = [
        failed("a", Failure.STATUS, required=False, status=404),
        failed("b", Failure.CANCELLED),
        failed("c", Failure.TIMEOUT),
        failed("d", Failure.CONNECT),
    ]
    with pytest.raises(BackendFailed) as caught:
        merge_outcomes(outcomes, ["a", "b", "c", "d"], single=False)
    assert (caught.value.status, caught.value.backend) == (504, "c")


def test_every_backend_failing_fails_the_route() -> None:
    outcomes = [
        failed("a", Failure.STATUS, required=False, status=404),
        failed("b", Failure.TIMEOUT, required=False),
    ]
    with pytest.raises(BackendFailed) as caught:
        merge_outcomes(outcomes, ["a", "b"], single=False)
    assert (caught.value.status, caught.value.backend) == (404, "a")
