"""The sale page and status script renderers: escaping, no order path, a static and self-contained page."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest

from flashsale_gateway.page import render_page, render_status_js
from flashsale_sale.contract import ORDER_PATH_PREFIX, order_path
from flashsale_sale.settings import GatewaySettings

HOSTILE = '<script>alert("x")</script> & </script><img src=x onerror=alert(1)> \u2028'
ORDER_PATH_KEY = "order-path-key-for-unit-tests"
USER_TOKEN_KEY = "user-token-key-for-unit-tests"
PAYMENT_KEY = "payment-key-for-unit-tests"


def settings(**overrides: Any) -> GatewaySettings:
    starts = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
    values: dict[str, Any] = {
        "sale_name": "winter-drop",
        "sale_id": "3f2a9c1e-0000-4000-8000-000000000001",
        "stock": 100,
        "per_user_limit": 1,
        "starts_at": starts,
        "ends_at": starts + timedelta(hours=2),
        "redis_url": "redis://127.0.0.1:6379/0",
        "kafka_bootstrap_servers": "127.0.0.1:9092",
        "database_url": "postgresql://flashsale@127.0.0.1/flashsale",
        "product_sku": "SKU-1",
        "product_name": "Limited edition kettle",
        "product_price": "1299.5",
        "product_currency": "EUR",
        "product_description": "Brass.\nHand made.",
        "sale_token_key": USER_TOKEN_KEY,
        "sale_payment_key": PAYMENT_KEY,
        "order_path_key": ORDER_PATH_KEY,
    }
    values.update(overrides)
    return GatewaySettings(**values)


class _Page(HTMLParser):
    """What a browser would see: elements with their attributes, script bodies, and text."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.styles: list[str] = []
        self.text: list[str] = []
        self._open: str | None = None
        self.feed(source)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self.scripts.append((dict(attrs), ""))
        self._open = tag

    def handle_endtag(self, tag: str) -> None:
        self._open = None

    def handle_data(self, data: str) -> None:
        if self._open == "script":
            attrs, body = self.scripts[-1]
            self.scripts[-1] = (attrs, body + data)
        elif self._open == "style":
            self.styles.append(data)
        else:
            self.text.append(data)

    def attrs_of(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]

    def config(self) -> dict[str, Any]:
        bodies = [body for attrs, body in self.scripts if attrs.get("id") == "sale-config"]
        assert len(bodies) == 1
        loaded: dict[str, Any] = json.loads(bodies[0])
        return loaded


def page_of(**overrides: Any) -> tuple[str, _Page]:
    source = render_page(settings(**overrides)).decode()
    return source, _Page(source)


def test_hostile_text_is_shown_as_text_and_never_becomes_markup() -> None:
    source, page = page_of(product_name=HOSTILE, product_description=HOSTILE, sale_name=HOSTILE)

    assert "<script>alert" not in source
    assert "<img src=x" not in source
    # Only the page's own three scripts and no image: the hostile text made no elements.
    assert len(page.scripts) == 3
    assert page.attrs_of("img") == []
    assert HOSTILE in "".join(page.text)
    assert page.config()["sale"] == HOSTILE  # the JSON block round-trips the exact value


def test_hostile_text_cannot_end_the_config_block() -> None:
    source, _ = page_of(sale_name="</script><script>alert(1)</script>")
    block = source.split('id="sale-config">', 1)[1].split("</script>", 1)[0]
    assert "<" not in block
    assert ">" not in block


def test_the_page_never_holds_the_order_path_or_a_key() -> None:
    current = settings()
    source = render_page(current).decode()

    assert order_path(ORDER_PATH_KEY.encode(), current.sale_id) not in source
    assert ORDER_PATH_PREFIX not in source
    assert ORDER_PATH_KEY not in source
    assert USER_TOKEN_KEY not in source
    assert PAYMENT_KEY not in source


def test_the_page_is_static_and_shows_the_product() -> None:
    first = render_page(settings())
    assert first == render_page(settings())  # no time or per-user content: cacheable by anyone

    _, page = page_of()
    text = "".join(page.text)
    assert "Limited edition kettle" in text
    assert "1,299.50 EUR" in text
    assert "Brass.\nHand made." in text
    assert page.config() == {
        "sale": "winter-drop",
        "startsAt": "2026-12-01T18:00:00.000Z",
        "endsAt": "2026-12-01T20:00:00.000Z",
        "perUserLimit": 1,
    }
    (button,) = [attrs for attrs in page.attrs_of("button") if attrs.get("id") == "buy"]
    assert "disabled" in button


def test_the_page_loads_nothing_from_elsewhere() -> None:
    _, page = page_of()
    sources = [attrs.get(name) for _, attrs in page.tags for name in ("src", "href") if attrs.get(name)]
    assert sources == ["data:,", "/status.js"]


def test_the_content_security_policy_allows_exactly_the_inline_script_and_style() -> None:
    _, page = page_of(product_image_url="https://images.example.com/kettle.png?size=2")
    (meta,) = [a for a in page.attrs_of("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    policy = {name: value for name, _, value in (d.partition(" ") for d in str(meta["content"]).split("; "))}
    (inline,) = [body for attrs, body in page.scripts if not attrs]
    (style,) = page.styles

    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == f"'self' '{_sha256(inline)}'"
    assert policy["style-src"] == f"'{_sha256(style)}'"
    assert policy["img-src"] == "'self' data: https://images.example.com"
    assert policy["connect-src"] == "'self'"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://images.example.com/a.png", True),
        ("/images/a.png", True),
        ("", False),
        ("javascript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("//elsewhere.example.com/a.png", False),
        ("https://user:secret@images.example.com/a.png", False),
        ("https://images.example.com;script-src *", False),
    ],
)
def test_only_plain_image_urls_are_shown(url: str, shown: bool) -> None:
    _, page = page_of(product_image_url=url)
    assert [attrs["src"] for attrs in page.attrs_of("img")] == ([url] if shown else [])


def test_a_quantity_field_appears_only_when_a_buyer_may_take_more_than_one() -> None:
    _, single = page_of(per_user_limit=1)
    _, several = page_of(per_user_limit=3)

    assert single.attrs_of("input") == []
    (field,) = several.attrs_of("input")
    assert (field["id"], field["min"], field["max"]) == ("quantity", "1", "3")
    assert several.config()["perUserLimit"] == 3


def test_the_status_script_hands_the_status_to_the_page() -> None:
    status = {
        "sale": "winter-drop",
        "state": "live",
        "startsAt": "x",
        "endsAt": "y",
        "orderPath": "/api/buy/a",
    }
    script = render_status_js(json.dumps(status).encode()).decode()

    match = re.fullmatch(
        r"window\.__flashsale_status=(\{.*\});"
        r"if\(window\.__flashsale_onStatus\)window\.__flashsale_onStatus\(window\.__flashsale_status\);\n",
        script,
    )
    assert match is not None
    assert json.loads(match.group(1)) == status


def test_the_status_script_cannot_end_a_script_element() -> None:
    status = {"sale": "</script><script>alert(1)</script>\u2028", "state": "scheduled", "orderPath": None}
    script = render_status_js(json.dumps(status, ensure_ascii=False).encode()).decode()
    literal = script.split("=", 1)[1].split(";if(", 1)[0]

    assert "<" not in literal
    assert "\u2028" not in literal
    assert json.loads(literal) == status


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
