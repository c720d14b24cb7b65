"""Python hooks (SPEC 3.12) through a real gateway process, the hook module on
PYTHONPATH: stages and what each may read and change, order, rejections,
failures, deadlines, load-time errors at their line, and reloads."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.integration.conftest import Gateway, GatewayFactory, Stub
from tests.processes import PYTHON, ROOT

SECRET = "a-test-secret-that-is-long-enough-for-hs256"

HOOKS = """
import asyncio, collections, time
from gateway.hooks import BackendCall, RequestContext, ResponseContext

IMPORTED_AT = repr(time.time())
CALLS = collections.Counter()


async def first(ctx: RequestContext) -> None:
    ctx.set_upstream_header("X-Order", "global-1")


async def second(ctx: RequestContext) -> None:
    ctx.set_upstream_header("X-Order", ctx.upstream_headers_set["x-order"] + ",global-2")


async def route_hook(ctx: RequestContext) -> None:
    ctx.set_upstream_header("X-Order", ctx.upstream_headers_set["x-order"] + ",route")


async def describe(ctx: RequestContext) -> None:
    r = ctx.request
    ctx.set_upstream_header("X-Seen", "|".join([
        r.method, r.path, r.route, ",".join(f"{k}={v}" for k, v in sorted(r.params.items())),
        r.query.get("q", "-"), r.headers.get("x-client", "-"), r.identity or "-",
        str(r.claims.get("tenant", "-")), r.request_id,
    ]))
    ctx.set_upstream_header("X-Imported-At", IMPORTED_AT)
    ctx.remove_upstream_header("Accept-Language")
    if r.query.get("deny"):
        ctx.reject(451, "denied by a hook")


async def boom(ctx: RequestContext) -> None:
    if ctx.request.query.get("boom"):
        raise RuntimeError("a secret detail that must not leak")


async def smuggle(ctx: RequestContext) -> None:
    ctx.set_upstream_header(ctx.request.query["set"], ctx.request.query.get("value", "22"))


async def slow(ctx: RequestContext) -> None:
    await asyncio.sleep(float(ctx.request.query.get("sleep", "0")))


async def sign(call: BackendCall) -> None:
    CALLS[call.request.request_id] += 1
    call.set_header("X-Signed", f"{call.backend}:{call.method}:{call.path}")
    call.set_query("signed", "1")
    call.remove_query("drop")


async def shape(response: ResponseContext) -> None:
    response.body["hook"] = {
        "outcomes": [[o.name, o.ok, o.status, o.error] for o in response.outcomes],
        "backend_calls": CALLS.pop(response.request.request_id, 0),
        "completed": response.completed,
    }
    response.set_header("X-Shaped", "yes")
    if response.request.query.get("status"):
        response.status = int(response.request.query["status"])


async def unjsonable(response: ResponseContext) -> None:
    response.body["bad"] = object()


def not_async(ctx: RequestContext) -> None:
    pass
"""

ROUTES = """
version: 1
upstreams:
  stub: {url: "${STUB}", timeout: 2s, retries: {attempts: 3, backoff: 10ms}}
  live: {url: "${LIVE}", timeout: 2s}
auth:
  tokens: {type: jwt, algorithms: [HS256], secret: "${SECRET}"}
hooks:
  request: [acme_hooks:first, acme_hooks:second]
routes:
  - name: agg
    path: /agg/{id}
    timeout: 1s
    hooks:
      request: [acme_hooks:route_hook, acme_hooks:describe, acme_hooks:boom, acme_hooks:slow]
      backend: [acme_hooks:sign]
      response: [acme_hooks:shape]
    backends:
      - {upstream: stub, path: "/echo/{id}", key: echo, query: {drop: "x", keep: "y"}}
      - {upstream: stub, path: "/flaky/{query.flaky}/1", key: flaky, required: false}
  - name: cached
    path: /cached
    cache: {ttl: 60s}
    hooks:
      response: [acme_hooks:shape]
    backends:
      - {upstream: stub, path: /echo/cached, key: echo, allow: [path]}
  - name: private
    path: /private
    auth: tokens
    hooks: {request: [acme_hooks:describe]}
    proxy: {upstream: stub, path: /echo/private}
  - name: pass
    path: /pass/{rest:path}
    hooks: {request: [acme_hooks:describe, acme_hooks:boom]}
    proxy: {upstream: stub, path: "/echo/{rest}"}
  - name: smuggle
    path: /smuggle
    methods: [POST]
    hooks: {request: [acme_hooks:smuggle]}
    proxy: {upstream: stub, path: /echo/smuggle}
  - name: streamed
    path: /streamed
    stream: true
    hooks:
      backend: [acme_hooks:sign]
      response: [acme_hooks:shape]
    backends:
      - {upstream: stub, path: /echo/streamed, key: echo}
  - name: unjsonable
    path: /unjsonable
    hooks: {response: [acme_hooks:unjsonable]}
    backends:
      - {upstream: stub, path: /echo/u, key: echo}
  - name: chat
    path: /chat
    hooks: {request: [acme_hooks:describe]}
    websocket: {upstream: live, path: /ws/echo/chat}
"""


@pytest.fixture(scope="module")
def hook_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("hookmods")
    (directory / "acme_hooks.py").write_text(HOOKS)
    return directory


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, stub: Stub, live: Stub, hook_dir: Path) -> Gateway:
    return start_gateway(
        ROUTES,
        STUB=stub.url,
        LIVE=live.url,
        SECRET=SECRET,
        PYTHONPATH=str(hook_dir),
        RELOAD="true",
    )


def headers_of(echo: dict[str, Any]) -> dict[str, str]:
    """The stubs echo headers as [name, value] pairs."""
    return dict(echo["headers"])


def echoed_headers(response: httpx.Response, key: str = "echo") -> dict[str, str]:
    return headers_of(response.json()[key])


def log_lines(gw: Gateway, request_id: str) -> list[dict[str, Any]]:
    time.sleep(0.2)
    return [
        json.loads(line)
        for line in gw.process.output().splitlines()
        if line.startswith("{") and f'"{request_id}"' in line
    ]


# --- the request stage ---------------------------------------------------------------
def test_global_hooks_run_before_the_routes_in_list_order(gw: Gateway) -> None:
    response = gw.get("/agg/7?flaky=order")
    assert response.status_code == 200
    assert echoed_headers(response)["x-order"] == "global-1,global-2,route"


def test_request_hooks_read_the_request_and_change_upstream_headers(gw: Gateway) -> None:
    response = gw.get(
        "/agg/7?q=search&flaky=read",
        headers={"X-Client": "c1", "X-Request-ID": "hook-read-1", "Accept-Language": "fr"},
    )
    headers = echoed_headers(response)
    assert headers["x-seen"] == "GET|/agg/7|agg|id=7|search|c1|-|-|hook-read-1"
    assert "accept-language" not in headers  # forwarded by default, removed by the hook


def test_identity_and_verified_claims_reach_request_hooks(gw: Gateway) -> None:
    token = jwt.encode(
        {"sub": "sam", "tenant": "acme", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256"
    )
    response = gw.get(
        "/private", headers={"Authorization": f"Bearer {token}", "X-Request-ID": "hook-jwt"}
    )
    assert headers_of(response.json())["x-seen"].split("|")[6:8] == ["sam", "acme"]
    # after auth: a request without a token never reaches the hook
    assert gw.get("/private?deny=1").status_code == 401


def test_a_rejection_answers_its_status_as_a_problem(gw: Gateway, stub: Stub) -> None:
    stub.reset()
    response = gw.get("/agg/7?deny=1", headers={"X-Request-ID": "hook-deny"})
    assert response.status_code == 451
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["detail"] == "denied by a hook"
    assert problem["route"] == "agg" and problem["request_id"] == "hook-deny"
    assert stub.stats()["paths"].get("/echo/7") is None  # no upstream was called
    assert gw.get("/pass/x?deny=1").status_code == 451  # proxy routes run request hooks


def test_a_raising_hook_is_a_500_naming_it_and_logged_once(gw: Gateway) -> None:
    for path, route in (("/agg/7?boom=1", "agg"), ("/pass/x?boom=1", "pass")):
        request_id = f"hook-boom-{route}"
        response = gw.get(path, headers={"X-Request-ID": request_id})
        assert response.status_code == 500
        problem = response.json()
        assert problem["type"] == "urn:gateway:problem:hook-failed"
        assert "acme_hooks:boom" in problem["detail"]
        assert problem["route"] == route and problem["request_id"] == request_id
        assert "secret detail" not in response.text
        lines = log_lines(gw, request_id)
        errors = [line for line in lines if line.get("level") == "error"]
        assert len(errors) == 1 and "a secret detail that must not leak" in errors[0]["error"]
        (access,) = [line for line in lines if "status" in line]
        assert access["status"] == 500


@pytest.mark.parametrize(
    "name", ["Content-Length", "Transfer-Encoding", "Host", "Connection", "Proxy-Authorization"]
)
def test_a_hook_cannot_set_a_framing_header(gw: Gateway, stub: Stub, name: str) -> None:
    """A second Content-Length, a Transfer-Encoding or a second Host on a
    pooled upstream connection is request smuggling: the call fails in the
    hook, nothing reaches the upstream."""
    before = stub.count("/echo/smuggle")
    response = gw.request("POST", f"/smuggle?set={name}", content=b'{"a": 1}')
    assert response.status_code == 500
    assert response.json()["type"].endswith("hook-failed")
    assert stub.count("/echo/smuggle") == before
    replaced = gw.request("POST", "/smuggle?set=X-Tenant&value=t", headers={"X-Tenant": "forged"})
    assert [v for n, v in replaced.json()["headers"] if n == "x-tenant"] == ["t"]


def test_hooks_count_against_the_route_deadline(gw: Gateway) -> None:
    started = time.monotonic()
    response = gw.get("/agg/7?sleep=3&flaky=slow", headers={"X-Request-ID": "hook-slow"})
    assert response.status_code == 504
    assert response.json()["type"] == "urn:gateway:problem:route-deadline"
    assert "acme_hooks:slow" in response.json()["detail"]
    assert time.monotonic() - started < 1.8  # the route's 1 s, not the hook's 3 s
    # a hook that takes part of the deadline leaves the rest to the backends
    assert gw.get("/agg/7?sleep=0.3&flaky=part").status_code == 200


async def test_websocket_handshakes_run_request_hooks(gw: Gateway) -> None:
    url = "ws://" + gw.url.removeprefix("http://") + "/chat"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url + "?deny=1"):
            pass
    assert refused.value.response.status_code == 451
    async with connect(url, additional_headers={"X-Client": "ws"}) as ws:
        await ws.send("hello")
        hello = json.loads(await ws.recv())
    assert headers_of(hello)["x-order"] == "global-1,global-2"
    assert headers_of(hello)["x-seen"].startswith("GET|/chat|chat||-|ws|")


# --- the backend and response stages ----------------------------------------------------
def test_backend_hooks_change_each_calls_headers_and_query_once_per_backend(
    gw: Gateway,
) -> None:
    response = gw.get("/agg/7?flaky=once", headers={"X-Request-ID": "hook-backend"})
    body = response.json()
    echo = body["echo"]
    assert headers_of(echo)["x-signed"] == "echo:GET:/echo/7"
    assert sorted(echo["query"].split("&")) == ["keep=y", "signed=1"]
    # the flaky backend failed once and was retried: still one hook call for it
    assert body["flaky"]["attempt"] == 2
    assert body["hook"]["backend_calls"] == 2  # two backends, one call each


def test_response_hooks_see_outcomes_and_change_body_status_and_headers(gw: Gateway) -> None:
    response = gw.get("/agg/7?flaky=r1&status=203")
    assert response.status_code == 203
    assert response.headers["x-shaped"] == "yes"
    hook = response.json()["hook"]
    assert hook["outcomes"] == [["echo", True, 200, None], ["flaky", True, 200, None]]
    assert hook["completed"] is True
    assert response.headers["x-gateway-completed"] == "true"


def test_the_cache_holds_the_answer_after_response_hooks(gw: Gateway, stub: Stub) -> None:
    stub.reset()
    first = gw.get("/cached")
    second = gw.get("/cached")
    assert first.headers["x-cache"] == "MISS"
    assert second.headers["x-cache"] == "HIT"
    assert first.json() == second.json() and "hook" in second.json()
    assert stub.stats()["paths"]["/echo/cached"] == 1
    assert first.headers["x-shaped"] == second.headers["x-shaped"] == "yes"


def test_streamed_answers_run_backend_hooks_not_response_hooks(gw: Gateway) -> None:
    with httpx.stream(
        "GET", gw.url + "/streamed", headers={"Accept": "application/x-ndjson"}
    ) as response:
        records = [json.loads(line) for line in response.iter_lines()]
    assert headers_of(records[0]["body"])["x-signed"] == "echo:GET:/echo/streamed"
    assert "hook" not in records[0]["body"]
    assert records[-1] == {"event": "done", "completed": True}
    plain = gw.get("/streamed").json()
    assert "hook" in plain  # the plain request to the same route runs them


def test_a_response_hook_leaving_a_body_that_is_not_json_is_a_500(gw: Gateway) -> None:
    response = gw.get("/unjsonable")
    assert response.status_code == 500
    assert response.json()["type"] == "urn:gateway:problem:hook-failed"


def test_hook_durations_in_the_access_log_and_metrics(gw: Gateway) -> None:
    gw.get("/agg/7?flaky=log", headers={"X-Request-ID": "hook-log"})
    (line,) = [entry for entry in log_lines(gw, "hook-log") if "status" in entry]
    names = [(h["name"], h["stage"]) for h in line["hooks"]]
    assert names[:6] == [
        ("acme_hooks:first", "request"),
        ("acme_hooks:second", "request"),
        ("acme_hooks:route_hook", "request"),
        ("acme_hooks:describe", "request"),
        ("acme_hooks:boom", "request"),
        ("acme_hooks:slow", "request"),
    ]
    assert names.count(("acme_hooks:sign", "backend")) == 2
    assert names[-1] == ("acme_hooks:shape", "response")
    assert all(h["duration_ms"] >= 0 for h in line["hooks"])
    metrics = gw.admin_get("/metrics").text
    assert 'gateway_hook_duration_seconds_count{hook="acme_hooks:sign"}' in metrics


# --- load time: names at their line, reloads -------------------------------------------
BAD = """\
version: 1
upstreams:
  stub: {url: "http://127.0.0.1:9"}
hooks:
  request:
    - acme_hooks:first
    - acme_hooks:nope
routes:
  - name: a
    path: /a
    hooks:
      request: [no_such_module:hook]
      response: [acme_hooks:not_async, "not a name"]
    backends: [{upstream: stub, path: /x}]
  - name: p
    path: /p
    hooks: {response: [acme_hooks:shape]}
    proxy: {upstream: stub, path: /x}
"""


def test_bad_hook_names_are_errors_at_their_line(hook_dir: Path, tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(BAD)
    env = {"PYTHONPATH": str(hook_dir), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [PYTHON, "manage.py", "check_routes", str(routes)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert lines == [
        f"{routes}:7: hooks.request: 'acme_hooks:nope': module 'acme_hooks' has no attribute 'nope'",
        f"{routes}:12: route 'a': hooks.request: 'no_such_module:hook': cannot import"
        " 'no_such_module': ModuleNotFoundError: No module named 'no_such_module'",
        f"{routes}:13: route 'a': hooks.response: 'acme_hooks:not_async': not an async def",
        f"{routes}:13: route 'a': hooks.response: 'not a name': expected 'module.path:attribute'",
        f"{routes}:17: route 'p': hooks.response: applies to aggregate (backends) routes only",
    ]


def test_a_reload_resolves_names_again_without_reimporting(gw: Gateway, hook_dir: Path) -> None:
    before = echoed_headers(gw.get("/agg/1?flaky=reload1"))
    imported_at = before["x-imported-at"]
    # New code on disk is not imported by a reload: a hook that only the new
    # file has is an unknown name, and the edit is refused.
    (hook_dir / "acme_hooks.py").write_text(HOOKS + "\n\nasync def brand_new(ctx): pass\n")
    original = gw.routes_file.read_text()
    gw.routes_file.write_text(original.replace("acme_hooks:second]", "acme_hooks:brand_new]"))
    time.sleep(3)
    still = gw.get("/agg/1?flaky=reload2")
    assert echoed_headers(still)["x-order"] == "global-1,global-2,route"  # the old config
    # A change naming hooks that exist: resolved again, same module object.
    gw.routes_file.write_text(
        original.replace("[acme_hooks:first, acme_hooks:second]", "[acme_hooks:first]")
    )
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        headers = echoed_headers(gw.get("/agg/1?flaky=reload3"))
        if headers["x-order"] == "global-1,route":
            break
        time.sleep(0.3)
    assert headers["x-order"] == "global-1,route"
    assert headers["x-imported-at"] == imported_at
    gw.routes_file.write_text(original)
    time.sleep(2.5)


# --- the worked examples (examples/hooks), as the README walks through them ------------
EXAMPLES = """
version: 1
upstreams:
  stub: {url: "${STUB}", timeout: 2s}
auth:
  staff: {type: jwt, algorithms: [HS256], secret: "${SECRET}"}
routes:
  - name: account
    path: /account/{id}
    auth: staff
    hooks:
      request: [acme_hooks.tenancy:tenant_from_claim]
      backend: [acme_hooks.signing:sign_backend_call]
      response: [acme_hooks.shaping:redact_and_summarise]
    backends:
      - {upstream: stub, path: "/echo/{id}", key: echo, allow: [headers, path]}
      - {upstream: stub, path: "/users/{id}", key: user}
"""


def test_the_example_hooks_in_a_real_gateway(start_gateway: GatewayFactory, stub: Stub) -> None:
    gateway = start_gateway(
        EXAMPLES,
        STUB=stub.url,
        SECRET=SECRET,
        PYTHONPATH=str(ROOT / "examples" / "hooks"),
        BACKEND_SIGNING_KEY="s" * 32,
    )
    token = jwt.encode(
        {"sub": "sam", "tenant": "acme", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256"
    )
    response = gateway.get("/account/3", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    body = response.json()
    headers = headers_of(body["echo"])
    assert headers["x-tenant-id"] == "acme"
    assert len(headers["x-signature"]) == 64 and headers["x-signature-timestamp"].isdigit()
    assert body["user"] == {"id": "3", "name": "User 3", "account_id": "acc-3"}
    untenanted = jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    refused = gateway.get("/account/3", headers={"Authorization": f"Bearer {untenanted}"})
    assert refused.status_code == 403


def test_a_hook_module_that_fails_to_import_is_named_at_its_line(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        EXAMPLES.replace("${STUB}", "http://127.0.0.1:9").replace("${SECRET}", SECRET)
    )
    result = subprocess.run(
        [PYTHON, "manage.py", "check_routes", str(routes)],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "examples" / "hooks"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout.strip() == (
        f"{routes}:13: route 'account': hooks.backend: 'acme_hooks.signing:sign_backend_call':"
        " cannot import 'acme_hooks.signing': RuntimeError: BACKEND_SIGNING_KEY must be set"
        " to at least 32 bytes"
    )
