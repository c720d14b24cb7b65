"""The dashboard in a real browser (SPEC 3.14): headless Chromium loads the
admin listener's page from a gateway under traffic, is asked for the token
once, shows every route and upstream, and its numbers move. Screenshots at
1280x800 and at a phone's size go to build/screenshots/ (the README's image
is docs/img/dashboard.png: UPDATE_SCREENSHOTS=1 refreshes it from this test).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser import Browser, chromium_path
from tests.integration.conftest import ROOT, Gateway, GatewayFactory, Stub, free_port

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="no Chromium (make test installs Debian's chromium)"
)

ROUTES = """
version: 1
upstreams:
  users: {url: "${STUB}", timeout: 2s}
  orders: {url: "${STUB}", timeout: 2s}
  billing:
    url: "http://127.0.0.1:${DEAD}"
    timeout: 1s
    circuit_breaker: {failures: 3, cooldown: 30s}
  catalog:
    targets: [{url: "${STUB}", name: live}, {url: "http://127.0.0.1:${DEAD}", name: gone}]
    balance: round_robin   # live, gone, live, gone: two failures in four calls
    outlier: {consecutive_failures: 2, base_ejection: 5m}
    retries: {attempts: 2, backoff: 10ms}
    timeout: 1s
routes:
  - name: user-dashboard
    path: /api/users/{user_id}/dashboard
    backends:
      - {upstream: users, path: "/delay/20/users/{user_id}", key: user}
      - {upstream: orders, path: "/delay/35/orders/{user_id}", key: orders}
  - name: orders
    path: /api/orders/{rest:path}
    proxy: {upstream: orders, path: "/echo/{rest}"}
  - name: invoices
    path: /api/users/{user_id}/invoices
    backends: [{upstream: billing, path: "/invoices/{user_id}", key: invoices}]
  - name: search
    path: /api/search
    rate_limit: {limit: 5, window: 1s, key: client}
    backends: [{upstream: users, path: /echo/search, key: hits}]
  - name: profile
    path: /api/profile/{user_id}
    validate: {response: {schema: {required: [email]}}}   # the stub's users have none
    backends: [{upstream: users, path: "/users/{user_id}"}]
  - name: catalog
    path: /api/catalog
    backends: [{upstream: catalog, path: /echo/catalog, key: items}]
    mirror: {upstream: users, compare: true}   # the echo differs: the mirror's headers
"""
TOKEN = "dashboard-test-token"
SHOTS = ROOT / "build" / "screenshots"


@pytest.fixture(scope="module")
def gw(start_gateway: GatewayFactory, stub: Stub) -> Gateway:
    return start_gateway(ROUTES, STUB=stub.url, DEAD=str(free_port()), ADMIN_TOKEN=TOKEN)


@pytest.fixture(scope="module")
def traffic(gw: Gateway) -> Iterator[None]:
    """Requests on every route, from four threads, until the module ends."""
    stop = threading.Event()
    paths = ["/api/users/7/dashboard"] * 4 + ["/api/orders/9", "/api/search", "/nowhere"]

    def run(offset: int) -> None:
        with httpx.Client(base_url=gw.url, timeout=10) as client:
            i = offset
            while not stop.is_set():
                try:
                    client.get(paths[i % len(paths)])
                    if i % 25 == 0:
                        client.get("/api/users/1/invoices")
                except httpx.HTTPError:  # a slow moment on a busy machine: keep going
                    pass
                i += 1

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(4)]
    for thread in threads:
        thread.start()
    yield
    stop.set()
    for thread in threads:
        thread.join()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with Browser(1280, 800) as b:
        yield b


@pytest.fixture
def board(gw: Gateway, traffic: None, browser: Browser) -> Browser:
    """The browser on the live dashboard (with the token given), whichever
    test of this module runs first."""
    if not str(browser.evaluate("location.href")).startswith(gw.admin_url):
        browser.open(gw.admin_url + "/")
        browser.evaluate(f"sessionStorage.setItem('gateway-admin-token', '{TOKEN}'); true")
        browser.open(gw.admin_url + "/")
    browser.wait_for("document.getElementById('state').dataset.state === 'live'")
    return browser


def number(browser: Browser, route: str, metric: str) -> str:
    return str(
        browser.evaluate(
            f'document.querySelector(\'[data-route="{route}"] [data-metric="{metric}"]'
            " .value').textContent"
        )
    )


def test_the_page_asks_for_the_token_once_then_shows_every_route(
    gw: Gateway, traffic: None, browser: Browser
) -> None:
    browser.open(gw.admin_url + "/")
    browser.wait_for("!document.getElementById('login').hidden")
    assert browser.evaluate("document.getElementById('board').hidden") is True
    browser.evaluate(
        f"document.getElementById('token').value = '{TOKEN}';"
        "document.getElementById('login').requestSubmit(); true"
    )
    browser.wait_for("!document.getElementById('board').hidden")
    browser.wait_for("document.getElementById('state').dataset.state === 'live'")
    shown = browser.evaluate(
        "[...document.querySelectorAll('[data-route]')].map(e => e.dataset.route)"
    )
    assert set(shown) >= {"user-dashboard", "orders", "invoices", "search"}
    upstreams = browser.evaluate(
        "[...document.querySelectorAll('[data-upstream]')].map(e => e.dataset.upstream)"
    )
    assert sorted(upstreams) == ["billing", "catalog", "orders", "users"]
    # Once given, the token is kept: a reload of the page goes straight to the board.
    browser.open(gw.admin_url + "/")
    browser.wait_for("document.getElementById('state').dataset.state === 'live'")
    assert browser.evaluate("document.getElementById('login').hidden") is True


def test_the_numbers_move(board: Browser) -> None:
    browser = board
    browser.wait_for(
        'document.querySelector(\'[data-route="user-dashboard"] [data-metric="rps"] .value\')'
        ".textContent !== '0.0'"
    )
    seen: set[tuple[str, str]] = set()
    deadline = time.monotonic() + 20
    while len(seen) < 3 and time.monotonic() < deadline:
        seen.add(
            (number(browser, "user-dashboard", "rps"), number(browser, "user-dashboard", "p99"))
        )
        time.sleep(0.7)
    assert len(seen) >= 3, seen  # updated live, without reloading the page
    p50 = number(browser, "user-dashboard", "p50")
    assert (
        p50.endswith(" ms") and float(p50.split()[0].replace(",", "")) >= 30
    )  # the slower backend
    browser.wait_for(  # a line through several seconds, growing as they pass
        '(document.querySelector(\'[data-route="user-dashboard"] [data-metric="rps"]'
        " path.line').getAttribute('d').match(/L/g) || []).length >= 3"
    )


def test_failures_and_an_open_circuit_are_in_the_fail_colour(board: Browser) -> None:
    browser = board
    browser.wait_for(
        "document.querySelector('[data-upstream=\"billing\"] [data-circuit]')"
        ".dataset.circuit === 'open'",
        timeout=30,
    )
    pill = "document.querySelector('[data-upstream=\"billing\"] .pill')"
    colour = browser.evaluate(f"getComputedStyle({pill}).color")
    fail = browser.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--fail').trim()"
    )
    assert _rgb(fail) == colour
    assert "fail" in browser.evaluate(
        "document.querySelector('[data-upstream=\"billing\"]').className"
    )
    # A rate limit doing its work (429s on `search`) is amber, never red.
    browser.wait_for(
        'document.querySelector(\'[data-route="search"] [data-metric="r429"]\')'
        ".className.includes('warn')"
    )
    assert "fail" not in browser.evaluate(
        "document.querySelector('[data-route=\"search\"]').className"
    )


def test_the_colour_rules_are_on_the_page_as_the_readme_says(board: Browser) -> None:
    from gateway.observe.levels import LEGEND

    rows = board.evaluate(
        "[...document.querySelectorAll('#legend-rules tr')]"
        ".map(r => [...r.children].map(c => c.textContent))"
    )
    assert rows == [list(rule) for rule in LEGEND]
    readme = (ROOT / "README.md").read_text()
    for what, warn, fail in LEGEND:
        assert f"| {what} | {warn} | {fail} |" in readme, what


def test_totals_scales_status_codes_and_full_paths(board: Browser, gw: Gateway) -> None:
    browser = board
    browser.wait_for("!document.getElementById('totals').hidden")
    browser.wait_for(
        "document.querySelector('[data-totals] [data-metric=\"rps\"] .value').textContent !== '0.0'"
    )
    scale = browser.evaluate(
        'document.querySelector(\'[data-route="user-dashboard"] [data-metric="rps"]'
        " .scale').textContent"
    )
    assert str(scale).startswith("max ")
    browser.wait_for(  # /nowhere: 404s, told apart from other 4xx
        "document.querySelector('[data-route=\"(no route)\"] .statuses').textContent"
        ".includes('404 \\u00d7')"
    )
    upstream_p99 = browser.evaluate(
        'document.querySelector(\'[data-upstream="users"] [data-metric="p99"] .value\').textContent'
    )
    assert str(upstream_p99).endswith(" ms")
    path = "document.querySelector('[data-route=\"invoices\"] .path')"
    assert browser.evaluate(f"{path}.textContent") == "GET HEAD /api/users/{user_id}/invoices"
    assert browser.evaluate(f"{path}.scrollWidth <= {path}.clientWidth") is True  # not cut


def test_recent_errors_carry_their_request_ids(board: Browser, gw: Gateway) -> None:
    gw.get("/api/nothing-here", headers={"X-Request-ID": "browser-error-42"})
    row = "document.querySelector('#errors tr[data-request-id=\"browser-error-42\"]')"
    board.wait_for(f"!!{row}")
    cells = board.evaluate(f"[...{row}.children].map(c => c.textContent)")
    assert cells[1] == "404" and cells[3] == "GET /api/nothing-here"
    assert cells[6] == "browser-error-42"


def test_policies_show_their_tables(board: Browser, gw: Gateway) -> None:
    """A policy's panel (here response validation's) is a table on the page."""
    assert gw.get("/api/profile/3").status_code == 200  # report mode: the answer passes
    panel = "document.querySelector('[data-panel=\"/validation\"]')"
    board.wait_for(f"!!{panel} && {panel}.querySelectorAll('tbody tr').length > 0")
    assert board.evaluate(f"{panel}.querySelector('h2').textContent").startswith(
        "Response validation"
    )
    cells = board.evaluate(
        f"[...{panel}.querySelector('tbody tr').children].map(c => c.textContent)"
    )
    assert cells[1] == "profile" and cells[3] == "report"
    assert '(root): "email" is a required property' in cells[4]


def test_an_upstreams_targets_show_their_state(board: Browser, gw: Gateway) -> None:
    for _ in range(4):  # the dead target fails twice: ejected (and each call retried)
        assert gw.get("/api/catalog").status_code == 200
    row = 'document.querySelector(\'[data-upstream="catalog"] [data-target="gone"]\')'
    board.wait_for(f"!!{row} && {row}.dataset.state === 'ejected'")
    assert "back in" in board.evaluate(f"{row}.textContent")
    live = 'document.querySelector(\'[data-upstream="catalog"] [data-target="live"]\')'
    assert board.evaluate(f"{live}.dataset.state") == "healthy"
    assert board.evaluate(f"{live}.textContent").startswith("liveweight 1")
    panel = "document.querySelector('[data-panel=\"/mirror\"]')"
    board.wait_for(f"!!{panel} && {panel}.querySelectorAll('tbody tr').length > 0")
    cells = board.evaluate(
        f"[...{panel}.querySelector('tbody tr').children].map(c => c.textContent)"
    )
    assert cells[1] == "catalog" and cells[2] == "GET /echo/catalog"
    assert "headers." in cells[3]


def test_it_fits_the_screen_at_1280x800_and_on_a_phone(board: Browser) -> None:
    browser = board
    SHOTS.mkdir(parents=True, exist_ok=True)
    # Some seconds of history on the charts; a minute for the README's image.
    time.sleep(60 if os.environ.get("UPDATE_SCREENSHOTS") else 8)
    for name, (width, height, mobile) in {
        "dashboard-1280x800": (1280, 800, False),
        "dashboard-phone": (390, 844, True),
    }.items():
        browser.resize(width, height, mobile=mobile)
        time.sleep(0.5)
        overflow = browser.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name}: {overflow}px wider than the screen"
        browser.screenshot(SHOTS / f"{name}.png")
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000
    browser.resize(1280, 800)
    if os.environ.get("UPDATE_SCREENSHOTS"):
        target = ROOT / "docs" / "img"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(SHOTS / "dashboard-1280x800.png", target / "dashboard.png")
        shutil.copy(SHOTS / "dashboard-phone.png", target / "dashboard-phone.png")


def _rgb(hex_colour: str) -> str:
    value = hex_colour.lstrip("#")
    r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgb({r}, {g}, {b})"


def test_a_refused_reload_shows_in_red(start_gateway: GatewayFactory, stub: Stub) -> None:
    watched = start_gateway(ROUTES, STUB=stub.url, DEAD=str(free_port()), RELOAD="true")
    with Browser(1280, 800) as b:
        b.open(watched.admin_url + "/")
        b.wait_for("document.getElementById('state').dataset.state === 'live'")
        original = watched.routes_file.read_text()
        watched.routes_file.write_text(original + "  - name: broken-edit\n    path: no-slash\n")
        item = "document.querySelector('#reloads li[data-result=\"refused\"]')"
        b.wait_for(f"!!{item}", timeout=15)
        text = b.evaluate(f"{item}.textContent")
        assert f"{watched.routes_file}:" in text and "previous config keeps serving" in text
        colour = b.evaluate(f"getComputedStyle({item}.querySelector('pre')).color")
        fail = b.evaluate(
            "getComputedStyle(document.documentElement).getPropertyValue('--fail').trim()"
        )
        assert colour == _rgb(fail)
        assert b.evaluate("document.getElementById('disk').dataset.state") == "differs"
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        b.screenshot(SHOTS / "dashboard-refused-reload.png")
        # The file fixed (back as it was): the dashboard says so, the red is gone.
        watched.routes_file.write_text(original)
        b.wait_for("!!document.querySelector('#reloads li[data-result=\"restored\"]')", timeout=15)
        assert b.evaluate("document.getElementById('disk').dataset.state") == "serving"
        assert "undone" in b.evaluate(f"{item}.className")
        assert "fail" not in b.evaluate(f"{item}.className")
