"""What the edge removes or refuses before anything reads a request."""

from __future__ import annotations

from gateway.edge.intake import drop_underscore_headers, too_many_query_fields


def test_headers_with_underscores_are_dropped_in_place() -> None:
    scope = {
        "headers": [
            (b"x-client-id", b"ok"),
            (b"x_client_id", b"forged"),
            (b"transfer_encoding", b"chunked"),
            (b"accept", b"*/*"),
        ]
    }
    drop_underscore_headers(scope)
    assert scope["headers"] == [(b"x-client-id", b"ok"), (b"accept", b"*/*")]


def test_a_request_without_underscores_keeps_its_list() -> None:
    headers = [(b"host", b"x"), (b"accept", b"*/*")]
    scope = {"headers": headers}
    drop_underscore_headers(scope)
    assert scope["headers"] is headers


def test_query_fields_are_counted_as_django_counts_them() -> None:
    assert too_many_query_fields(b"&".join([b"a=1"] * 1000)) is None
    refusal = too_many_query_fields(b"&".join([b"a=1"] * 1001))
    assert refusal is not None and refusal.status == 400
    assert too_many_query_fields(b"&" * 1000) is not None  # empty fields count too
