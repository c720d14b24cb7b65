"""Pure: backend outcomes -> the route's JSON body and completeness, or the
failure that decides the route's status (SPEC 3.1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.errors import BackendFailed, backend_error
from gateway.pipeline.aggregate.outcome import Outcome
from gateway.types import Failure

__all__ = ["merge_outcomes", "route_failure"]


def route_failure(outcomes: Sequence[Outcome]) -> BackendFailed | None:
    """The error that fails the route, if it fails: a required backend failed
    (the first such in list order decides), or every backend did (the first
    in list order decides)."""
    decider = _decider(outcomes)
    return None if decider is None else _error(decider)


def _decider(outcomes: Sequence[Outcome]) -> Outcome | None:
    failed = [o for o in outcomes if not o.ok and o.failure is not Failure.CANCELLED]
    decider = next((o for o in failed if o.required), None)
    if decider is None and failed and len(failed) == len(outcomes):
        decider = failed[0]
    return decider


def _error(decider: Outcome) -> BackendFailed:
    assert decider.failure is not None
    return backend_error(
        decider.name, decider.failure, status=decider.route_status, detail=decider.detail
    )


def merge_outcomes(
    outcomes: Sequence[Outcome], keys: Sequence[str | None], single: bool
) -> tuple[Any, bool]:
    """Return (body, completed). Raise BackendFailed when the route fails
    (`route_failure`)."""
    if (decider := _decider(outcomes)) is not None:
        # Raised without a local name: a local holding the exception would
        # keep this frame alive through its own traceback (a cycle per request).
        raise _error(decider)
    failed = [o for o in outcomes if not o.ok and o.failure is not Failure.CANCELLED]
    if single and keys[0] is None:
        return outcomes[0].body, True
    body: dict[str, Any] = {}
    for outcome, key in zip(outcomes, keys, strict=True):
        if not outcome.ok:
            continue
        if key is None:
            body.update(outcome.body)  # checked to be an object when it was shaped
        else:
            body[key] = outcome.body
    return body, len(failed) == 0
