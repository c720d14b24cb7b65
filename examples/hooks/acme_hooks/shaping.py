"""A response hook: private fields never leave the gateway, and clients get a
computed summary of the merged answer.

    hooks:
      response: [acme_hooks.shaping:redact_and_summarise]

Any field named in PRIVATE is removed wherever it appears in the merged body
(a backend may add one tomorrow; this keeps it in). When the body has a list
of `orders` with `amount`s, `summary` gives their count and total; it says
which backends failed, when any did.
"""

from __future__ import annotations

from typing import Any

from gateway.hooks import ResponseContext

PRIVATE = frozenset({"email", "phone", "ssn", "password"})


def redact(value: Any) -> Any:
    """`value` without PRIVATE fields, at any depth."""
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items() if k not in PRIVATE}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


async def redact_and_summarise(response: ResponseContext) -> None:
    body = redact(response.body)
    if isinstance(body, dict):
        orders = body.get("orders")
        summary: dict[str, Any] = {}
        if isinstance(orders, list):
            amounts = [o.get("amount", 0) for o in orders if isinstance(o, dict)]
            numbers = [a for a in amounts if isinstance(a, int | float)]
            summary = {"orders": len(orders), "total": round(sum(numbers), 2)}
        failed = [o.name for o in response.outcomes if not o.ok]
        if failed:
            summary["missing"] = failed
        if summary:
            body["summary"] = summary
    response.body = body
