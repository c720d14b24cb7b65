"""The shared vocabulary (gateway/types.py): stages compose outermost first."""

from __future__ import annotations

from gateway.types import Failure, Handler, Stage, compose, contract_word


def tagging(tag: str) -> Stage[list[str], str]:
    def stage(inner: Handler[list[str], str]) -> Handler[list[str], str]:
        async def handler(trail: list[str]) -> str:
            trail.append(f"{tag} in")
            answer = await inner(trail)
            trail.append(f"{tag} out")
            return f"{tag}({answer})"

        return handler

    return stage


async def innermost(trail: list[str]) -> str:
    trail.append("handler")
    return "answer"


async def test_the_first_stage_runs_first_and_sees_the_answer_last() -> None:
    trail: list[str] = []
    handler = compose(innermost, tagging("a"), None, tagging("b"))
    assert await handler(trail) == "a(b(answer))"
    assert trail == ["a in", "b in", "handler", "b out", "a out"]


async def test_no_stage_leaves_the_handler_as_it_is() -> None:
    assert compose(innermost) is innermost
    assert compose(innermost, None, None) is innermost


def test_failures_say_their_route_status_and_contract_word() -> None:
    assert (Failure.TIMEOUT.route_status, contract_word(Failure.TIMEOUT)) == (504, "timeout")
    assert (Failure.CIRCUIT_OPEN.route_status, contract_word(Failure.CIRCUIT_OPEN)) == (
        503,
        "circuit_open",
    )
    assert contract_word(Failure.DEPENDENCY) == "connection"  # no word of its own
