"""What the edge does with a request before anything reads it
(gateway/edge/intake.py): the envelope, the Host check, what it removes or
refuses."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from gateway.assembly import build_gateway
from gateway.edge.intake import (
    drop_underscore_headers,
    host_allowed,
    open_envelope,
    too_many_query_fields,
)
from gateway.router import Match, NoMatch
from gateway.runtime import Runtime
from tests.conftest import table


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


# --- the envelope ------------------------------------------------------------------
GATEWAY = build_gateway(
    table(
        """
        version: 1
        upstreams: {u: {url: "http://u"}}
        auth:
          keys: {type: api_key, keys: [{id: a, key: k}], query_param: api_key}
        routes:
          - name: items
            path: /items/{id}
            methods: [GET, DELETE]
            cors: {allow_origins: [https://app.example]}
            auth: keys
            backends: [{upstream: u, path: /x}]
          - name: other
            path: /items/{id}
            methods: [POST]
            backends: [{upstream: u, path: /y}]
        """
    ),
    Runtime(redis_url="", failure_mode="open"),
)
TRUSTED = (ipaddress.ip_network("10.0.0.0/8"),)


def scope(
    method: str = "GET", path: str = "/items/1", query: bytes = b"", **headers: str
) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [(k.lower().replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
        "client": ("198.51.100.4", 1234),
        "scheme": "http",
    }


def test_the_envelope_holds_the_match_and_who_asks() -> None:
    envelope = open_envelope(scope(X_Request_ID="abc", Host="h:1"), GATEWAY, TRUSTED)
    assert isinstance(envelope.found, Match) and envelope.route_name == "items"
    assert not envelope.preflight
    assert (envelope.request_id, envelope.client, envelope.forwarded_host) == (
        "abc",
        "198.51.100.4",
        "h:1",
    )
    assert (envelope.forwarded_for, envelope.forwarded_proto) == ("198.51.100.4", "http")
    assert envelope.secret_params == frozenset({"api_key"})


def test_a_trusted_proxy_says_who_the_client_is() -> None:
    trusted = scope(
        X_Forwarded_For="203.0.113.9", X_Forwarded_Proto="https", X_Forwarded_Host="api.example"
    )
    trusted["client"] = ("10.1.2.3", 999)
    envelope = open_envelope(trusted, GATEWAY, TRUSTED)
    assert (envelope.client, envelope.forwarded_proto, envelope.forwarded_host) == (
        "203.0.113.9",
        "https",
        "api.example",
    )
    untrusted = open_envelope(
        scope(X_Forwarded_For="203.0.113.9", X_Forwarded_Proto="https"), GATEWAY, TRUSTED
    )
    assert (untrusted.client, untrusted.forwarded_proto) == ("198.51.100.4", "http")


def test_a_preflight_is_matched_to_the_route_serving_its_method_if_it_has_cors() -> None:
    asks_delete = scope(
        "OPTIONS", Origin="https://app.example", Access_Control_Request_Method="delete"
    )
    envelope = open_envelope(asks_delete, GATEWAY, TRUSTED)
    assert envelope.preflight and envelope.route_name == "items"  # its stack answers it
    asks_post = scope("OPTIONS", Origin="https://app.example", Access_Control_Request_Method="POST")
    plain = open_envelope(asks_post, GATEWAY, TRUSTED)  # "other" has no CORS
    assert not plain.preflight and isinstance(plain.found, NoMatch)  # OPTIONS itself: 405
    no_origin = open_envelope(scope("OPTIONS", Access_Control_Request_Method="GET"), GATEWAY, ())
    assert not no_origin.preflight


def test_query_credentials_are_taken_out_before_anything_reads_the_query() -> None:
    asked = scope(query=b"a=1&api_key=k&b=2")
    envelope = open_envelope(asked, GATEWAY, TRUSTED)
    assert asked["query_string"] == b"a=1&b=2"
    assert envelope.query_credentials == {"keys": "k"}
    assert envelope.query == "a=1&api_key=k&b=2"  # logged with the credential masked
    elsewhere = scope("POST", query=b"api_key=k")  # route "other": no auth, left as it is
    open_envelope(elsewhere, GATEWAY, TRUSTED)
    assert elsewhere["query_string"] == b"api_key=k"


def test_without_routes_the_envelope_still_says_who_asks() -> None:
    envelope = open_envelope(scope(), None, TRUSTED)
    assert envelope.found is None and envelope.route_name is None and envelope.request_id


@pytest.mark.parametrize(
    ("host", "allowed"),
    [("gw.example", True), ("gw.example:8080", True), ("evil.example", False), ("", False)],
)
def test_the_host_is_checked_against_allowed_hosts(host: str, allowed: bool, settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["gw.example"]
    assert host_allowed({"headers": [(b"host", host.encode())]}) is allowed


def test_without_a_host_header_the_servers_own_address_is_checked(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    assert host_allowed({"headers": [], "server": ("127.0.0.1", 8000)})
    assert not host_allowed({"headers": []})
    settings.ALLOWED_HOSTS = ["*"]
    assert host_allowed({"headers": [(b"host", b"anything")]})
