"""The sale page in a real browser: Debian's chromium, driven by Playwright, against a real gateway.

The gateway is the `flashsale gateway` process on the platform's Redis, Kafka and PostgreSQL; the
sale is opened the way the operator opens it (the Redis start flag). Playwright's own browser
download cannot work offline, so the browser is Debian's `chromium`, which `make setup` installs.

Screenshots of every step go to tests/artifacts/sale_page/ (ignored by git), overwritten each run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from flashsale_dev.sale import Gateway, LocalSale
from flashsale_sale.contract import ORDER_PATH_PREFIX

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox (we may run as root in a container); no GPU, no background traffic: there is no internet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "sale_page"
PATIENCE_MS = 90_000  # a busy 2-core machine: conditions, with deadlines far beyond their usual time
PRODUCT_NAME = "Kettle <Limited> & Co"


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium (setup-system.sh)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def sale(sale: LocalSale) -> LocalSale:
    """Three units, at most two per buyer, starting in an hour: only the flag will open it."""
    sale.stock = 3
    sale.per_user_limit = 2
    sale.sale_name = "browser-sale"
    sale.product_name = PRODUCT_NAME
    sale.product_description = "Hand-hammered copper.\nOne batch, never again."
    sale.product_price = "129.90"
    sale.product_currency = "EUR"
    sale.prepare()
    return sale


def test_the_sale_page_before_the_start_after_the_flip_and_when_sold_out(
    browser: Browser, sale: LocalSale
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    gateway = sale.start_gateway()
    sale.start_consumer()  # turns the reservation into an order
    secret = sale.order_path

    # Before the start: a countdown, a disabled button, and no order URL anywhere the browser has.
    alice = _context(browser, token=sale.token("alice"))
    page, problems = _open(alice, gateway)
    served = httpx.get(f"{gateway.url}/", timeout=30).text
    expect(page.locator("body")).to_have_attribute("data-state", "scheduled", timeout=PATIENCE_MS)
    expect(page.locator("h1")).to_have_text(PRODUCT_NAME)  # escaped by the server, shown as text
    expect(page.locator("#countdown")).to_contain_text("Starts in")
    expect(page.locator("#message")).to_contain_text("Not started")
    expect(page.locator("#buy")).to_be_disabled()
    status = page.evaluate("window.__flashsale_status")
    assert status["state"] == "scheduled"
    assert status["orderPath"] is None
    _assert_no_order_url(secret, served_page=served, dom=page.content())
    _screenshot(page, "1-scheduled")

    # The flip: the page learns the order path from the status and enables the button.
    sale.set_open(True)
    expect(page.locator("body")).to_have_attribute("data-state", "live", timeout=PATIENCE_MS)
    expect(page.locator("#buy")).to_be_enabled()
    _assert_no_order_url(secret, dom=page.content())
    page.locator("#quantity").fill("2")
    _screenshot(page, "2-live")

    stranger_problems = _click_without_a_token(browser, gateway)

    # A click buys: the page shows the reservation the gateway made, then the order.
    page.locator("#buy").click()
    expect(page.locator("#reservation")).to_be_visible(timeout=PATIENCE_MS)
    expect(page.locator("#reservation-state")).to_contain_text(re.compile("reserved|ordered"))
    expect(page.locator("#reservation-quantity")).to_have_text("2")
    expect(page.locator("#buy")).to_be_disabled()
    reservation = page.locator("#reservation-id").inner_text()
    owned = httpx.get(f"{gateway.url}/api/orders/{reservation}", headers=sale.bearer("alice"), timeout=30)
    assert owned.status_code == 200, owned.text
    assert owned.json()["reservationId"] == reservation
    _screenshot(page, "4-reserved")
    # The page keeps asking until the consumer has written the order.
    expect(page.locator("#reservation-state")).to_have_text("ordered", timeout=PATIENCE_MS)
    _screenshot(page, "5-ordered")

    # Another buyer takes the last unit over plain HTTP: a fresh page says sold out.
    _buy_over_http(sale, gateway, "bob", quantity=1)
    fresh, fresh_problems = _open(_context(browser, token=sale.token("carol")), gateway)
    expect(fresh.locator("body")).to_have_attribute("data-state", "soldout", timeout=PATIENCE_MS)
    expect(fresh.locator("#message")).to_contain_text("Sold out")
    expect(fresh.locator("#buy")).to_be_disabled()
    _screenshot(fresh, "6-sold-out")
    # The buyer's own page follows too (it keeps polling while live), and still shows the reservation.
    expect(page.locator("body")).to_have_attribute("data-state", "soldout", timeout=PATIENCE_MS)
    expect(page.locator("#reservation-id")).to_have_text(reservation)
    _screenshot(page, "7-ordered-then-sold-out")

    assert problems + stranger_problems + fresh_problems == []
    print(f"sale page screenshots: {ARTIFACTS}")


def _assert_no_order_url(secret: str, **texts: str) -> None:
    for where, text in texts.items():
        assert secret not in text, f"the order path is in the {where}"
        assert ORDER_PATH_PREFIX not in text, f"an order path is in the {where}"


def _click_without_a_token(browser: Browser, gateway: Gateway) -> list[str]:
    """Without a token the page says so readably instead of sending anything."""
    stranger, problems = _open(_context(browser, token=None), gateway)
    expect(stranger.locator("#buy")).to_be_enabled(timeout=PATIENCE_MS)
    stranger.locator("#buy").click()
    expect(stranger.locator("#error")).to_contain_text("not signed in")
    _screenshot(stranger, "3-not-signed-in")
    return problems


def _buy_over_http(sale: LocalSale, gateway: Gateway, user: str, quantity: int) -> None:
    """What a second shopper (or a script) does: read the status, POST to the order path it names."""
    live = gateway.status()
    assert isinstance(live["orderPath"], str), live
    answer = httpx.post(
        gateway.url + live["orderPath"], headers=sale.bearer(user), json={"quantity": quantity}, timeout=30
    )
    assert answer.status_code == 202, answer.text


def _context(browser: Browser, token: str | None) -> BrowserContext:
    """A fresh browser profile; the token where the shop's login would leave it (localStorage)."""
    context = browser.new_context(viewport={"width": 1100, "height": 820}, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(PATIENCE_MS)
    if token is not None:
        context.add_init_script(f"window.localStorage.setItem('flashsale.token', {json.dumps(token)});")
    return context


def _open(context: BrowserContext, gateway: Gateway) -> tuple[Page, list[str]]:
    """The sale page, and a list that collects its script errors and console errors (CSP blocks too)."""
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    response = page.goto(f"{gateway.url}/", wait_until="load", timeout=PATIENCE_MS)
    assert response is not None
    assert response.status == 200
    return page, problems


def _screenshot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
