"""Bad input never gets a 500: the whole app in process, driven as an ASGI server drives it.

The app is built as `flashsale gateway` builds it, with its stores down (Redis, PostgreSQL and Kafka
at a closed port). A request that reaches a store legitimately gets 503 `unavailable`, and the test
knows which requests may (`InProcessGateway.reaches_a_store`: the live order path with a real token
and a buy body; an order or a payment with a real token and a well-formed id). Any other 5xx, any
exception out of the app, any error that is not `{"error", "message"}` in JSON, is a bug.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flashsale_dev.http_inputs import (
    MAX_BUY_BODY,
    RESERVATION_ID,
    Framing,
    HttpRequest,
    Requests,
    check_answer,
    is_buy_body,
)
from flashsale_dev.http_sending import asgi_messages, asgi_scope
from flashsale_gateway.app import build_app
from flashsale_gateway.asgi import Message
from flashsale_sale import tokens
from flashsale_sale.settings import GatewaySettings

PER_USER_LIMIT = 3
SETTINGS: dict[str, Any] = {
    "sale_name": "drop",
    "sale_id": "unit-sale",
    "stock": 5,
    "per_user_limit": PER_USER_LIMIT,
    "starts_at": datetime.now(UTC) - timedelta(hours=1),
    "ends_at": datetime.now(UTC) + timedelta(hours=2),
    "redis_url": "redis://127.0.0.1:1/0",  # nothing listens on port 1: every store is down
    "kafka_bootstrap_servers": "127.0.0.1:1",
    "database_url": "postgresql://nobody@127.0.0.1:1/none",
    "product_sku": "S-1",
    "product_name": "Thing",
    "product_price": "5.00",
    "product_currency": "EUR",
    "sale_token_key": "u" * 20,
    "sale_payment_key": "p" * 20,
    "order_path_key": "o" * 20,
}
FRAMINGS: tuple[Framing, ...] = ("length", "none", "chunked", "cut_short", "declared_less", "declared_junk")
FUZZ = settings(
    deadline=None,
    derandomize=True,  # the same examples on every run: CI is reproducible
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Served:
    """What the app sent for one request."""

    def __init__(self, messages: list[Message]) -> None:
        starts = [m for m in messages if m["type"] == "http.response.start"]
        assert len(starts) == 1, messages
        self.status: int = starts[0]["status"]
        self.headers = {
            bytes(k).decode("latin-1"): bytes(v).decode("latin-1") for k, v in starts[0]["headers"]
        }
        self.body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")


class InProcessGateway:
    """The app, one event loop for all its requests (as a server has), and a few real tokens."""

    def __init__(self) -> None:
        self.app = build_app(GatewaySettings(**SETTINGS))
        self.loop = asyncio.new_event_loop()
        self.order_path = self.app.runtime.order_path
        self.tokens = tokens.mint_many(self.app.runtime.user_token_key, [f"user-{i}" for i in range(12)])
        # any bytes at all in other headers: a server other than granian may pass on what it does not
        self.requests = Requests(self.order_path, self.tokens, FRAMINGS, st.binary(max_size=64))
        self.state = "live"

    def set_state(self, state: str) -> None:
        board = self.app.runtime.board
        board.set_flag(state != "paused")
        board.set_sold_out(state == "soldout")
        self.state = state

    def serve(self, request: HttpRequest) -> Served:
        pending = asgi_messages(request)
        sent: list[Message] = []

        async def receive() -> Message:
            return pending.pop(0) if pending else {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        self.loop.run_until_complete(asyncio.wait_for(self.app(asgi_scope(request), receive, send), 30))
        return Served(sent)

    def reaches_a_store(self, request: HttpRequest) -> bool:
        """Whether the contract lets this request ask Redis or PostgreSQL (down here: then 503 is right).

        Generous on purpose: it may allow a 503 where a 4xx comes first, never the other way round."""
        authorization = request.first(b"authorization") or b""
        real_token = any(token.encode() in authorization for token in self.tokens)
        path = request.path
        if request.method == "POST" and path == self.order_path:
            return (
                real_token
                and self.state == "live"
                and request.framing != "cut_short"
                and len(request.body) <= MAX_BUY_BODY
                and is_buy_body(request.body, PER_USER_LIMIT)
            )
        parts = path.split("/")
        if path.startswith("/api/orders/") and len(parts) in (4, 5):
            return real_token and bool(RESERVATION_ID.fullmatch(parts[3]))
        return False

    def keeps_the_contract(self, request: HttpRequest) -> Served:
        served = self.serve(request)
        check_answer(
            served.status,
            served.headers,
            served.body,
            head=request.method == "HEAD",
            store_asked=self.reaches_a_store(request),
        )
        return served

    def bearer(self, token: str) -> tuple[tuple[bytes, bytes], ...]:
        return ((b"authorization", b"Bearer " + token.encode()),)


@pytest.fixture(scope="module")
def gateway() -> Iterator[InProcessGateway]:
    built = InProcessGateway()
    yield built
    built.loop.close()


def test_a_deeply_nested_body_under_the_size_cap_is_refused_with_422(gateway: InProcessGateway) -> None:
    gateway.set_state("live")
    for body in (b"[" * 4000, b'{"quantity":' * 300, b'{"quantity": [[[[[[1]]]]]]}', b'{"a": {"b": 1}}'):
        request = HttpRequest(
            "POST", gateway.order_path.encode(), gateway.bearer(gateway.tokens[0]), body, "length"
        )
        assert gateway.keeps_the_contract(request).status == 422, body[:20]


@pytest.mark.parametrize("route", ["GET /api/orders/r-1", "POST /api/orders/r-1/pay", "POST {order_path}"])
@pytest.mark.parametrize("junk", ["\xff", "é", "\u2603", "\x80\x81"])
def test_a_token_with_non_ascii_characters_is_refused_with_401(
    gateway: InProcessGateway, route: str, junk: str
) -> None:
    gateway.set_state("live")
    method, path = route.format(order_path=gateway.order_path).split(" ")
    real = gateway.tokens[0]
    for token in (f"v1.alice.99999999999.{junk}", real[:-2] + junk, f"v1.alice.{junk}.sig", real + junk):
        request = HttpRequest(method, path.encode(), gateway.bearer(token), b"", "length")
        assert gateway.keeps_the_contract(request).status == 401, token


@settings(FUZZ, max_examples=200)
@given(
    token=st.one_of(
        st.text(max_size=90), st.text(max_size=60).map(lambda junk: f"v1.alice.99999999999.{junk}")
    )
)
def test_verifying_any_text_as_a_token_refuses_it_as_invalid_and_nothing_else(token: str) -> None:
    """What a header can carry, decoded as the framework decodes it (latin-1) or not: InvalidToken only."""
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(SETTINGS["sale_token_key"].encode(), token)


def test_a_token_with_digits_of_another_script_is_malformed() -> None:
    """str.isdigit() says yes to Arabic-Indic digits, and int() reads them: only ASCII is a token."""
    with pytest.raises(tokens.InvalidToken, match="malformed"):
        tokens.verify(SETTINGS["sale_token_key"].encode(), "v1.alice.\u0661\u0667\u0669\u0660.sig")


def test_a_body_cut_short_by_the_client_reserves_nothing(gateway: InProcessGateway) -> None:
    """The client went away before its declared body ended: whatever it meant to buy, it was not 1 unit."""
    gateway.set_state("live")
    asked = b'{"quantity": 3}'
    request = HttpRequest(
        "POST", gateway.order_path.encode(), gateway.bearer(gateway.tokens[1]), asked, "cut_short", (7,)
    )
    served = gateway.keeps_the_contract(request)
    assert served.status == 422, served.body  # never the gate's answer (503 here, with Redis down)


@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_the_live_order_path_answers_any_body_and_framing_without_a_5xx(
    gateway: InProcessGateway, data: st.DataObject
) -> None:
    gateway.set_state("live")
    gateway.keeps_the_contract(data.draw(gateway.requests.buys, label="request"))


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_orders_and_payments_answer_any_token_without_a_5xx(
    gateway: InProcessGateway, data: st.DataObject
) -> None:
    gateway.set_state("live")
    gateway.keeps_the_contract(data.draw(gateway.requests.token_checks, label="request"))


@settings(FUZZ, max_examples=200)
@given(data=st.data(), state=st.sampled_from(["live", "soldout", "paused"]))
def test_any_request_on_any_route_gets_no_5xx_unless_a_store_was_asked(
    gateway: InProcessGateway, data: st.DataObject, state: str
) -> None:
    request = data.draw(gateway.requests.anything, label="request")
    if request.path == "/readyz":
        return  # asks Redis and Kafka by design: 503 not_ready is its answer while they are down
    gateway.set_state(state)
    gateway.keeps_the_contract(request)
