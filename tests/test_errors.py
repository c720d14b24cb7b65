"""problem+json bodies (gateway/errors.py, SPEC 3.7)."""

from __future__ import annotations

import orjson

from gateway.errors import BackendFailed, MethodNotAllowed, error_response, problem_response


def test_problem_body() -> None:
    response = problem_response(404, "no route", request_id="r1", slug="not-found")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert orjson.loads(response.content) == {
        "type": "urn:gateway:problem:not-found",
        "title": "Not Found",
        "status": 404,
        "detail": "no route",
        "request_id": "r1",
    }
    assert response["Content-Length"] == str(len(response.content))


def test_route_backend_and_headers() -> None:
    response = error_response(
        MethodNotAllowed(frozenset({"POST", "GET"})), request_id="r", route="x"
    )
    assert response["Allow"] == "GET, POST"
    body = orjson.loads(
        error_response(
            BackendFailed(504, "slow", backend="b", slug="backend-timeout"),
            request_id="r",
            route="x",
        ).content
    )
    assert (body["status"], body["route"], body["backend"], body["title"]) == (
        504,
        "x",
        "b",
        "Gateway Timeout",
    )


def test_unknown_status_still_has_a_title() -> None:
    assert orjson.loads(problem_response(599, "odd", request_id="r").content)["title"] == "Error"
