"""/_gateway/docs in a real browser: Swagger UI renders every operation of
the routed API under a policy that admits nothing inline and nothing from
elsewhere, and "Try it out" reaches the gateway."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.browser import Browser, chromium_path
from tests.integration.conftest import Gateway, GatewayFactory, Stub

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="no Chromium (make test installs Debian's chromium)"
)

ROUTES = """
version: 1
upstreams:
  stub: {url: "${STUB}", timeout: 2s}
auth:
  partners:
    type: api_key
    header: X-Partner-Key
    keys: [{id: acme, key: acme-key, scopes: [orders:read]}]
routes:
  - name: user
    path: /api/users/{user_id}
    summary: One user, as the stub echoes it
    tags: [users]
    backends: [{upstream: stub, path: "/echo/users/{user_id}", key: echo, allow: [path]}]
  - name: orders
    path: /api/orders
    auth: partners
    scopes: [orders:read]
    backends: [{upstream: stub, path: /echo/orders, key: echo}]
  - name: files
    path: /files/{rest:path}
    methods: [GET, PUT]
    proxy: {upstream: stub, path: "/echo/{rest}"}
  - name: chat
    path: /ws/chat
    websocket: {upstream: stub, path: /ws}
"""
# Collects every Content-Security-Policy violation, from before the page's scripts run.
WATCH_CSP = (
    "window.__violations = [];"
    "document.addEventListener('securitypolicyviolation',"
    " e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
)


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, stub: Stub) -> Gateway:
    return start_gateway(ROUTES, STUB=stub.url)


@pytest.fixture(scope="module")
def explorer(gw: Gateway) -> Iterator[Browser]:
    with Browser(1280, 900) as browser:
        browser.call("Page.enable")
        browser.call("Page.addScriptToEvaluateOnNewDocument", source=WATCH_CSP)
        browser.open(gw.url + "/_gateway/docs")
        browser.wait_for("document.querySelectorAll('.opblock').length >= 4", timeout=30)
        yield browser


def test_every_operation_is_rendered_under_a_strict_policy(explorer: Browser) -> None:
    operations = explorer.evaluate(
        "[...document.querySelectorAll('.opblock')].map(o =>"
        " o.querySelector('.opblock-summary-method').textContent + ' ' +"
        " o.querySelector('.opblock-summary-path').getAttribute('data-path'))"
    )
    assert sorted(operations) == [
        "GET /api/orders",
        "GET /api/users/{user_id}",
        "GET /files/{rest}",
        "PUT /files/{rest}",
    ]  # one per method: HEAD folded into GET, the WebSocket route in the description
    assert "/ws/chat" in explorer.evaluate("document.querySelector('.info').textContent")
    assert explorer.evaluate("window.__violations") == []
    # the provider's header is offered in Authorize
    assert "X-Partner-Key" in explorer.evaluate(
        "JSON.stringify(window.ui.specSelectors.securityDefinitions().toJS())"
    )


def test_try_it_out_reaches_the_gateway(explorer: Browser, stub: Stub) -> None:
    before = stub.count("/echo/users/42")
    op = "document.querySelector('#operations-users-user-get')"
    explorer.evaluate(f"{op}.querySelector('.opblock-summary-control').click(); true")
    explorer.wait_for(f"!!{op}.querySelector('.try-out__btn')")
    explorer.evaluate(f"{op}.querySelector('.try-out__btn').click(); true")
    explorer.wait_for(f"!!{op}.querySelector('.execute')")  # in "try it out" now
    time.sleep(0.5)
    # React owns the input: set its value the way a keystroke would
    explorer.evaluate(
        f"const input = {op}.querySelector('input[placeholder=\"user_id\"]');"
        "Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(input, '42');"
        "input.dispatchEvent(new Event('input', {bubbles: true})); true"
    )
    explorer.wait_for(f"{op}.querySelector('input[placeholder=\"user_id\"]').value === '42'")
    time.sleep(1)  # Swagger UI takes a parameter's value after a debounce
    explorer.evaluate(f"{op}.querySelector('.execute').click(); true")
    status = explorer.wait_for(
        f"{op}.querySelector('.live-responses-table tbody .response-col_status')?.textContent",
        timeout=15,
    )
    assert str(status).strip().startswith("200")
    body = explorer.evaluate(
        f"{op}.querySelector('.live-responses-table .response-col_description .microlight')"
        ".textContent"
    )
    assert "/echo/users/42" in str(body)
    assert stub.count("/echo/users/42") == before + 1
    assert explorer.evaluate("window.__violations") == []
