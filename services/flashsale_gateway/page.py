"""The sale page and its status script: pure renderers, so the gateway renders the page once at start.

The page is the same bytes for every buyer and every second of the sale, which is what lets a CDN
(and the gateway's own ETag) serve the crowd: product, price, schedule, a countdown computed in the
browser, and a buy button that stays disabled until the status says live. It never holds the order
path - that arrives only in the status (`/status.js` at load, then `/api/status` polled), only while
the sale is live, so nobody can learn it from the page before the start.

The buyer's token is not the page's business either: the shop's login leaves it in
`localStorage["flashsale.token"]` or the cookie `flashsale_token`, where the page's script reads it.

Everything the operator configures is escaped for where it lands: HTML text and attributes, a JSON
data block (with `<`, `>`, `&` as \\u escapes so no value can close the script element), and a
Content-Security-Policy that allows only this page's own inline script and style (by hash), the
gateway's own origin and the product image's origin - no CDN fonts or scripts, nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from typing import Final
from urllib.parse import urlsplit

from flashsale_sale.settings import GatewaySettings

PAGE_CONTENT_TYPE: Final = "text/html; charset=utf-8"
STATUS_JS_CONTENT_TYPE: Final = "text/javascript; charset=utf-8"
STATUS_JS_PATH: Final = "/status.js"

# Characters that may only occur inside JSON strings, where their \u escapes mean the same thing; as
# raw bytes they could end a <script> element or, for U+2028/2029, a line in old JavaScript engines.
_JSON_SCRIPT_ESCAPES: Final = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_HOST: Final = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def render_page(settings: GatewaySettings) -> bytes:
    """The whole page, UTF-8: a function of the settings alone (same settings, same bytes)."""
    script = _static("sale.js")
    style = _static("sale.css")
    image = _image_url(settings.product_image_url)
    config = {
        "sale": settings.sale_name,
        "startsAt": _iso(settings.starts_at),
        "endsAt": _iso(settings.ends_at),
        "perUserLimit": settings.per_user_limit,
    }
    name = html.escape(settings.product_name)
    parts = [
        "<!doctype html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{html.escape(_csp(script, style, image))}">',
        f"<title>{name} - {html.escape(settings.sale_name)}</title>",
        '<link rel="icon" href="data:,">',
        f"<style>{style}</style>",
        "</head>",
        '<body data-state="loading">',
        '<main class="sale">',
    ]
    if image:
        parts.append(
            f'<figure class="product-image"><img src="{html.escape(image)}" alt="{name}"'
            ' referrerpolicy="no-referrer"></figure>'
        )
    parts += [
        '<section class="details">',
        f'<p class="eyebrow">{html.escape(settings.sale_name)}</p>',
        f"<h1>{name}</h1>",
        _price(settings.product_price, settings.product_currency),
    ]
    if settings.product_description:
        parts.append(f'<p class="description">{html.escape(settings.product_description)}</p>')
    parts += [
        f'<p class="schedule">From {_time(settings.starts_at)} to {_time(settings.ends_at)}</p>',
        '<p id="countdown" class="countdown"></p>',
        '<p id="message" class="message" role="status">Checking the sale…</p>',
        '<div class="buy">',
        _quantity(settings.per_user_limit),
        '<button id="buy" type="button" disabled>Buy now</button>',
        "</div>",
        '<p id="error" class="error" role="alert"></p>',
        '<section id="reservation" class="reservation" hidden>',
        "<h2>Your reservation</h2>",
        "<dl>",
        '<dt>Reservation</dt><dd id="reservation-id"></dd>',
        '<dt>State</dt><dd id="reservation-state"></dd>',
        '<dt>Quantity</dt><dd id="reservation-quantity"></dd>',
        '<dt>Pay by</dt><dd id="reservation-expires"></dd>',
        "</dl>",
        "</section>",
        "<noscript><p>Buying needs JavaScript: please turn it on for this page.</p></noscript>",
        "</section>",
        "</main>",
        f'<script type="application/json" id="sale-config">{_json_for_script(config)}</script>',
        f"<script>{script}</script>",
        f'<script src="{STATUS_JS_PATH}"></script>',
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(part for part in parts if part).encode()


def render_status_js(status_json: bytes) -> bytes:
    """`/status.js`: the status for the page's first paint, handed to the page's code if it has loaded.

    `status_json` is the gateway's encoded status answer; it is embedded as a JavaScript object
    literal (JSON is one), with the characters that could end a script element escaped, so the
    script stays inert text even if something ever inlines it into HTML.
    """
    body = status_json.decode()
    for raw, escaped in _JSON_SCRIPT_ESCAPES.items():
        body = body.replace(raw, escaped)
    return (
        f"window.__flashsale_status={body};"
        "if(window.__flashsale_onStatus)window.__flashsale_onStatus(window.__flashsale_status);\n"
    ).encode()


def _static(name: str) -> str:
    return resources.files("flashsale_gateway").joinpath("static", name).read_text(encoding="utf-8")


def _json_for_script(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for raw, escaped in _JSON_SCRIPT_ESCAPES.items():
        text = text.replace(raw, escaped)
    return text


def _iso(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds: what every browser's Date.parse reads the same way."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _time(moment: datetime) -> str:
    """A <time> the script re-renders in the buyer's own zone; UTC until then (and without script)."""
    shown = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f'<time datetime="{_iso(moment)}" data-local>{shown}</time>'


def _price(amount: Decimal, currency: str) -> str:
    plain = f"{amount:.2f}"
    shown = html.escape(f"{amount:,.2f} {currency}")
    return (
        f'<p id="price" class="price" data-amount="{plain}" data-currency="{html.escape(currency)}">'
        f"{shown}</p>"
    )


def _quantity(limit: int) -> str:
    """A quantity field only when a buyer may take more than one unit; the gateway enforces the limit."""
    if limit <= 1:
        return ""
    return (
        f'<label>Quantity <input id="quantity" type="number" min="1" max="{limit}" value="1"'
        ' inputmode="numeric"></label>'
    )


def _image_url(url: str) -> str:
    """The image URL if it is one the page can show safely: http(s) with a plain host, or same-origin."""
    if url.startswith("/") and not url.startswith("//"):
        return url
    parts = urlsplit(url)
    if parts.scheme in {"http", "https"} and _HOST.fullmatch(parts.netloc):
        return url
    return ""


def _csp(script: str, style: str, image: str) -> str:
    image_source = ""
    if image and not image.startswith("/"):
        parts = urlsplit(image)
        image_source = f" {parts.scheme}://{parts.netloc}"
    return (
        "default-src 'none'; "
        f"script-src 'self' '{_sha256(script)}'; "
        f"style-src '{_sha256(style)}'; "
        f"img-src 'self' data:{image_source}; "
        "connect-src 'self'; "
        "base-uri 'none'; form-action 'none'"
    )


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
