"""Pure: backend outcomes -> the route's JSON body and completeness, or the
failure that decides the route's status (SPEC 3.1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.pipeline.aggregate.outcome import Outcome
from gateway.pipeline.failures import Failure, failure_error

__all__ = ["merge_outcomes"]


def merge_outcomes(
    outcomes: Sequence[Outcome], keys: Sequence[str | None], single: bool
) -> tuple[Any, bool]:
    """Return (body, completed). Raise BackendFailed when the route fails: a
    required backend failed (the first such in list order decides), or every
    backend did (the first in list order decides)."""
    failed = [o for o in outcomes if not o.ok and o.failure is not Failure.CANCELLED]
    decider = next((o for o in failed if o.required), None)
    if decider is None and failed and len(failed) == len(outcomes):
        decider = failed[0]
    if decider is not None:
        assert decider.failure is not None
        raise failure_error(
            decider.name, decider.failure, status=decider.route_status, detail=decider.detail
        )
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
