"""The whole routes file: every rule of SPEC 1, each error with its line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gateway.registry import load_route_table, parse_route_table
from gateway.routes import RoutesFileError, RouteTable
from gateway.routes.model import Aggregate, Proxy, WebSocket

ROOT = Path(__file__).resolve().parents[2]

HEAD = """\
version: 1
upstreams:
  u: {url: "http://u.svc:8080/base/"}
  v: {url: "https://v.svc"}
routes:
"""


def problems(routes: str, head: str = HEAD) -> list[str]:
    with pytest.raises(RoutesFileError) as caught:
        parse_route_table(head + textwrap.dedent(routes), "r.yaml")
    return caught.value.lines()


def valid(routes: str, head: str = HEAD) -> RouteTable:
    return parse_route_table(head + textwrap.dedent(routes), "r.yaml")


def test_the_sample_routes_file_is_valid() -> None:
    table = load_route_table(ROOT / "routes.yaml")
    assert [(r.name, r.kind.__class__.__name__) for r in table.routes] == [
        ("user-dashboard", "Aggregate"),
        ("catalog", "Proxy"),
        ("partner-orders", "Aggregate"),
        ("order-search", "Aggregate"),
        ("user-overview", "Aggregate"),
        ("ticks", "Proxy"),
        ("echo", "WebSocket"),
        ("old-dashboard", "Static"),
        ("greeter", "Grpc"),
    ]


def test_defaults_and_typed_values() -> None:
    table = valid(
        """\
        - name: r
          path: /r/{id}
          timeout: 250ms
          max_body_size: 512KiB
          backends:
            - {upstream: u, path: "/x/{id}", key: k, required: false, target: data.items}
            - {upstream: v, path: /y}
            - {upstream: v, path: /z}
        """
    )
    route = table.routes[0]
    assert route.timeout == 0.25
    assert route.max_body_size == 512 * 1024
    assert route.methods == frozenset({"GET", "HEAD"})
    assert isinstance(route.kind, Aggregate)
    backends = route.kind.backends
    assert [b.name for b in backends] == ["k", "v", "v#2"]
    assert backends[0].target == ("data", "items")
    assert not backends[0].required
    upstream = table.upstreams["u"]
    assert (upstream.scheme, upstream.host, upstream.port, upstream.base_path) == (
        "http",
        "u.svc",
        8080,
        "/base",
    )
    assert table.upstreams["v"].port == 443
    assert upstream.timeout == 5.0
    assert upstream.max_connections == 100
    assert table.settings.timeout == 10.0
    assert table.settings.max_response_size == 10 * 1024 * 1024
    assert table.settings.forward_headers == ("accept-language",)


@pytest.mark.parametrize(
    ("routes", "expected"),
    [
        (
            "- {name: a, path: /a}\n",
            "r.yaml:6: route 'a': needs exactly one of 'backends', 'proxy', 'websocket', 'static' or 'grpc'",
        ),
        (
            "- {name: a, path: /a, backends: [{upstream: u, path: /x}], proxy: {upstream: u, path: /x}}\n",
            "r.yaml:6: route 'a': needs exactly one of 'backends', 'proxy', 'websocket', 'static' or 'grpc'",
        ),
        (
            "- {name: a, path: /a, backends: [{upstream: w, path: /x}]}\n",
            "r.yaml:6: route 'a': backends[0].upstream: unknown upstream 'w'",
        ),
        (
            "- {name: a, path: /a, auth: x, backends: [{upstream: u, path: /x}]}\n",
            "unknown auth provider 'x'",
        ),
        (
            "- {name: a, path: '/a/{id}', backends: [{upstream: u, path: '/x/{nope}'}]}\n",
            "backends[0].path: unknown route parameter {nope}",
        ),
        (
            "- {name: a, path: /a, backends: [{upstream: u, path: /x, query: {q: '{nope}'}}]}\n",
            "backends[0].query.q: unknown route parameter {nope}",
        ),
        (
            "- {name: a, path: /a, backends: [{upstream: u, path: '/x/{k.f}'}]}\n",
            "{k.f}: no backend has key 'k'",
        ),
        (
            "- {name: a, path: /a, backends: [{upstream: u, path: '/x/{k.f}', key: k}]}\n",
            "{k.f}: its own body",
        ),
        (
            "- {name: a, path: /a, backends: [{upstream: u, path: '/x/{b.f}', key: a}, {upstream: u, path: '/y/{a.f}', key: b}]}\n",
            "backends reference each other in a cycle: a -> b -> a",
        ),
        (
            "- {name: a, path: /healthz, backends: [{upstream: u, path: /x}]}\n",
            "'/healthz' is reserved",
        ),
        (
            "- {name: a, path: /metrics, backends: [{upstream: u, path: /x}]}\n",
            "'/metrics' is reserved",
        ),
        (
            "- {name: a, path: /_gateway/x, backends: [{upstream: u, path: /x}]}\n",
            "'/_gateway/x' is reserved",
        ),
        (
            "- {name: a, path: /a, methods: [TRACE], backends: [{upstream: u, path: /x}]}\n",
            "unsupported method 'TRACE'",
        ),
        (
            "- {name: a, path: /a, backends: [{upstream: u, path: /x, method: PUT}]}\n",
            "aggregate backends use GET or POST",
        ),
        (
            "- {name: a, path: /a, backends: [{upstream: u, path: /x, colour: red}]}\n",
            "unknown key 'colour'",
        ),
        (
            "- {name: a, path: /a, backends: [{upstream: u, path: /x, key: k}, {upstream: u, path: /y, key: k}]}\n",
            "key 'k' is used by backends[0] too",
        ),
        (
            "- {name: a, path: /a, backends: [{upstream: u, path: /x, name: n}, {upstream: u, path: /y, name: n}]}\n",
            "duplicate backend name 'n'",
        ),
        ("- {name: a, path: /a, backends: []}\n", "must list at least one backend"),
        (
            "- {name: a, path: /a, timeout: soon, backends: [{upstream: u, path: /x}]}\n",
            "invalid duration 'soon'",
        ),
        (
            "- {name: a, path: /a, timeout: 0, backends: [{upstream: u, path: /x}]}\n",
            "must be greater than zero",
        ),
        (
            "- {name: a, path: /a, max_body_size: 1 lot, backends: [{upstream: u, path: /x}]}\n",
            "invalid size",
        ),
        (
            "- {name: a, path: /a, backends: [{upstream: u, path: /x, forward_headers: [Host]}]}\n",
            "is set by the gateway",
        ),
        (
            "- {name: a, path: /a, backends: [{upstream: u, path: /x, allow: ['a..b']}]}\n",
            "invalid field path",
        ),
        (
            "- {name: a, path: /a, proxy: {upstream: u, path: '/x/{k.f}'}}\n",
            "proxy paths cannot use backend fields",
        ),
        (
            "- {name: a, path: /a, scopes: [x], backends: [{upstream: u, path: /x}]}\n",
            "scopes need 'auth'",
        ),
    ],
)
def test_route_rules(routes: str, expected: str) -> None:
    found = problems(routes)
    assert any(expected in line for line in found), found


def test_two_routes_with_the_same_shape_and_method() -> None:
    found = problems(
        """\
        - {name: a, path: "/items/{id}", backends: [{upstream: u, path: /x}]}
        - {name: b, path: "/items/{key}", methods: [DELETE, GET], backends: [{upstream: u, path: /x}]}
        - {name: c, path: "/items/{key}", methods: [POST], backends: [{upstream: u, path: /x}]}
        - {name: d, path: /items/new, backends: [{upstream: u, path: /x}]}
        """
    )
    assert found == [
        "r.yaml:7: route 'b': /items/{key} GET is already served by route 'a' (line 6)"
    ]


def test_duplicate_route_names() -> None:
    found = problems(
        """\
        - {name: a, path: /a, backends: [{upstream: u, path: /x}]}
        - {name: a, path: /b, backends: [{upstream: u, path: /x}]}
        """
    )
    assert found == ["r.yaml:7: route 'a': duplicate name (first used at line 6)"]


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        ("{url: 'ftp://x'}", "must start with http:// or https://"),
        ("{url: 'http://'}", "has no host"),
        ("{url: 'http://user:pw@x'}", "credentials in the URL"),
        ("{url: 'http://x/?a=1'}", "query or fragment"),
        ("{url: 'http://x:99999'}", "invalid URL"),
        ("{url: 'http://x', max_connections: 0}", "must be at least 1"),
        ("{url: 'http://x', headers: {'Bad Name': v}}", "not a valid header name"),
        ("{url: 'http://x', headers: {X-Forwarded-For: v}}", "this header is set by the gateway"),
        ("{timeout: 1s}", "give it a url: or a list of targets:"),
    ],
)
def test_upstream_rules(upstream: str, expected: str) -> None:
    head = f"version: 1\nupstreams:\n  x: {upstream}\nroutes: []\n"
    found = problems("", head=head)
    assert any(expected in line and line.startswith("r.yaml:3:") for line in found), found


def test_top_level_rules() -> None:
    assert problems("", head="version: 2\nroutes: []\n") == [
        "r.yaml:1: version: unsupported version 2 (expected 1)"
    ]
    assert problems("", head="routes: []\n") == ["r.yaml:1: missing required key 'version'"]
    assert any("unknown key 'rutes'" in p for p in problems("", head="version: 1\nrutes: []\n"))
    assert any(
        "did you mean 'routes'" in p
        for p in problems("", head="version: 1\nroutes: []\nroute: []\n")
    )


def test_every_problem_is_reported_at_once() -> None:
    found = problems(
        """\
        - name: a
          path: /a/{id}
          timeout: later
          backends:
            - {upstream: nope, path: "/x/{idd}"}
        - name: a
          path: /b
          backends: [{upstream: u, path: /y, unknown: 1}]
        """
    )
    assert [line.split(": ")[0] for line in found] == [
        "r.yaml:8",
        "r.yaml:10",
        "r.yaml:10",
        "r.yaml:11",
        "r.yaml:13",
    ]


def test_missing_file() -> None:
    with pytest.raises(RoutesFileError) as caught:
        load_route_table("/nonexistent/routes.yaml")
    assert caught.value.lines() == [
        "/nonexistent/routes.yaml: cannot read the routes file: No such file or directory"
    ]


# --- v2 kinds and keys: websocket routes, stream, idle_timeout, query_param ---------------
V2_HEAD = HEAD.replace(
    "routes:\n",
    "auth:\n  k: {type: api_key, keys: [{id: a, key: b}], query_param: access_token}\nroutes:\n",
)


def test_websocket_stream_and_idle_timeout_are_read_with_their_defaults() -> None:
    table = valid(
        """\
        - {name: ws, path: '/ws/{room}', auth: k, websocket: {upstream: u, path: '/rooms/{room}'}}
        - name: ws2
          path: /ws2
          websocket:
            upstream: v
            path: /chat
            subprotocols: [chat.v1, chat.v2]
            max_message_size: 64KiB
            idle_timeout: 30s
        - {name: feed, path: /feed, timeout: 1h, proxy: {upstream: u, path: /sse, idle_timeout: 5m}}
        - {name: agg, path: /agg, stream: true, backends: [{upstream: u, path: /x}]}
        """,
        V2_HEAD,
    )
    ws, ws2, feed, agg = table.routes
    assert ws.methods == frozenset({"GET", "HEAD"})  # a plain GET or HEAD is told 426
    assert isinstance(ws.kind, WebSocket) and isinstance(ws2.kind, WebSocket)
    assert ws.kind == WebSocket(
        upstream="u",
        path=ws.kind.path,
        subprotocols=None,
        max_message_size=1024 * 1024,
        idle_timeout=300.0,
    )
    assert ws2.kind == WebSocket(
        upstream="v",
        path=ws2.kind.path,
        subprotocols=("chat.v1", "chat.v2"),
        max_message_size=64 * 1024,
        idle_timeout=30.0,
    )
    assert isinstance(feed.kind, Proxy) and feed.kind.idle_timeout == 300.0
    assert feed.timeout == 3600.0
    assert isinstance(agg.kind, Aggregate) and agg.kind.stream is True
    assert table.sections["auth"]["k"].query_param == "access_token"


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        (
            "- {name: a, path: /a, methods: [POST], websocket: {upstream: u, path: /ws}}\n",
            "r.yaml:8: route 'a': methods: unsupported method 'POST'",
        ),
        (
            "- {name: a, path: /a, websocket: {upstream: u, path: /ws, extra: 1}}\n",
            "r.yaml:8: route 'a': websocket: unknown key 'extra'",
        ),
        (
            "- {name: a, path: /a, websocket: {upstream: w, path: /ws}}\n",
            "r.yaml:8: route 'a': websocket.upstream: unknown upstream 'w'",
        ),
        (
            "- {name: a, path: /a, websocket: {upstream: u}}\n",
            "r.yaml:8: route 'a': websocket: missing required key 'path'",
        ),
        (
            "- {name: a, path: /a, websocket: {upstream: u, path: /ws, subprotocols: ['a b']}}\n",
            "r.yaml:8: route 'a': websocket.subprotocols: invalid name 'a b'",
        ),
        (
            "- {name: a, path: /a, websocket: {upstream: u, path: /ws, idle_timeout: 0s}}\n",
            "r.yaml:8: route 'a': websocket.idle_timeout: must be greater than zero",
        ),
        (
            "- {name: a, path: '/a/{x}', websocket: {upstream: u, path: '/ws/{y}'}}\n",
            "r.yaml:8: route 'a': websocket.path: unknown parameter {y}",
        ),
        (
            "- {name: a, path: /a, websocket: {upstream: u, path: /ws}, stream: true}\n",
            "r.yaml:8: route 'a': stream: applies to aggregate (backends) routes only",
        ),
        (
            "- {name: a, path: /a, proxy: {upstream: u, path: /x}, stream: true}\n",
            "r.yaml:8: route 'a': stream: applies to aggregate (backends) routes only",
        ),
        (
            "- {name: a, path: /a, websocket: {upstream: u, path: /ws}, cache: {ttl: 1s}}\n",
            "r.yaml:8: route 'a': cache: applies to aggregate (backends) routes only",
        ),
        (
            "- {name: a, path: /a, backends: [{upstream: u, path: /x}], stream: maybe}\n",
            "r.yaml:8: route 'a': stream: expected true or false, got string",
        ),
        (
            "- {name: a, path: /a, proxy: {upstream: u, path: /x, idle_timeout: forever}}\n",
            "r.yaml:8: route 'a': proxy.idle_timeout: invalid duration 'forever'"
            " (use e.g. 250ms, 2s, 1m, 1h)",
        ),
        (
            "- {name: a, path: /a, websocket: {upstream: u, path: /ws},"
            " backends: [{upstream: u, path: /x}]}\n",
            "r.yaml:8: route 'a': needs exactly one of 'backends', 'proxy', 'websocket', 'static' or 'grpc'",
        ),
    ],
)
def test_v2_route_rules(route: str, expected: str) -> None:
    assert problems(route, V2_HEAD) == [expected]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("'access token'", "query_param: use letters, digits, '.', '_', '~' and '-' (up to 100)"),
        ("''", "query_param: must not be empty"),
        ("5", "query_param: expected a string, got number"),
    ],
)
def test_query_param_names_are_checked(value: str, expected: str) -> None:
    head = V2_HEAD.replace("query_param: access_token", f"query_param: {value}")
    route = "- {name: a, path: /a, proxy: {upstream: u, path: /x}}\n"
    assert problems(route, head) == [f"r.yaml:6: auth provider 'k': {expected}"]


def test_documentation_keys_are_read() -> None:
    (route,) = valid(
        """\
        - name: a
          path: /a
          summary: A user's dashboard
          description: Everything about one user, from three services.
          tags: [users, dashboards]
          backends: [{upstream: u, path: /x}]
        """
    ).routes
    assert route.summary == "A user's dashboard"
    assert route.description == "Everything about one user, from three services."
    assert route.tags == ("users", "dashboards")
    assert problems("- {name: a, path: /a, summary: 5, backends: [{upstream: u, path: /x}]}\n") == [
        "r.yaml:6: route 'a': summary: expected a string, got number"
    ]


def test_names_the_file_refers_to_get_a_suggestion(monkeypatch: pytest.MonkeyPatch) -> None:
    text = """
version: 1
upstreams:
  catalog: {url: "http://c:80"}
  users: {url: "${NOPE_URL}"}
auth:
  partners: {type: api_kee, keys: []}
routes:
  - name: b
    path: /b/{user_id}
    auth: partnrs
    backends:
      - {upstream: catalg, path: "/u/{user_idd}", key: u, query: {sku: {sku}}}
"""
    monkeypatch.delenv("NOPE_URL", raising=False)
    with pytest.raises(RoutesFileError) as raised:
        parse_route_table(text, "r.yaml")
    lines = raised.value.lines()
    assert "r.yaml:5: environment variable NOPE_URL is not set" in lines  # once, nothing more
    assert not [line for line in lines if line.startswith("r.yaml:5:") and "NOPE" not in line]
    expected = [
        "did you mean 'api_key'?",
        "did you mean 'partners'?",
        "did you mean 'catalog'?",
        "did you mean 'user_id'?",
        'write "{sku}" in quotes',
    ]
    for hint in expected:
        assert [line for line in lines if hint in line], (hint, lines)
