from acme_hooks.shaping import redact_and_summarise

from gateway.hooks.testing import outcome, response_context


async def test_private_fields_go_and_a_summary_comes() -> None:
    body = {
        "user": {"id": 1, "name": "Ada", "email": "ada@example.com"},
        "orders": [{"id": "o1", "amount": 20.5}, {"id": "o2", "amount": 40.0, "ssn": "x"}],
    }
    response = response_context(body, outcomes=[outcome("user"), outcome("orders")])
    await redact_and_summarise(response)
    assert response.body == {
        "user": {"id": 1, "name": "Ada"},
        "orders": [{"id": "o1", "amount": 20.5}, {"id": "o2", "amount": 40.0}],
        "summary": {"orders": 2, "total": 60.5},
    }


async def test_failed_backends_are_named() -> None:
    response = response_context(
        {"user": {"id": 1}},
        outcomes=[outcome("user"), outcome("orders", ok=False, error="timeout", required=False)],
    )
    await redact_and_summarise(response)
    assert response.body["summary"] == {"missing": ["orders"]}
    assert not response.completed
