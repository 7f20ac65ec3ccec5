"""What a sale's Secret holds is worth nothing at another sale: two sales side by side on the same
Redis, Kafka and PostgreSQL, each with its own gateway and consumer holding only its own derived keys
(as the operator gives them: tokens.sale_token_key / sale_payment_key of the platform's keys and
`namespace/name`). A token or a payment credential minted with sale A's keys is refused by sale B's
gateway; only the shop's payment service, with B's own credential, pays B's orders."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from flashsale_dev.platform import LocalPlatform
from flashsale_dev.sale import Gateway, LocalSale
from flashsale_dev.settlement import orders_by_state
from flashsale_dev.waiting import wait_for
from flashsale_sale import tokens


@pytest.fixture
def teapot(sale: LocalSale, platform: LocalPlatform) -> Iterator[LocalSale]:
    """Sale B, `local/teapot`, beside the test's own sale A (`local/local-sale`): its own id and topic."""
    topic = f"test-{uuid.uuid4().hex[:12]}"
    platform.kafka.create_topic(topic, partitions=1)
    other = LocalSale(
        redis_url=sale.redis_url,
        kafka_bootstrap_servers=sale.kafka_bootstrap_servers,
        topic=topic,
        database_url=sale.database_url,
        logs=sale.logs / "teapot",
        sale_name="teapot",
        reserve_port=sale.reserve_port,
    )
    yield other
    other.stop()
    platform.kafka.delete_topic(topic)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def buy_and_wait_for_the_order(sale: LocalSale, gateway: Gateway, user: str) -> str:
    with gateway.client() as client:
        answer = client.post(sale.order_path, headers=sale.bearer(user))
    assert answer.status_code == 202, answer.text
    reservation = str(answer.json()["reservationId"])
    wait_for(lambda: reservation in orders_by_state(sale)["ordered"], timeout=120, what=f"{user}'s order")
    return reservation


def test_a_token_or_credential_from_one_sale_s_keys_is_refused_by_another_sale(
    sale: LocalSale, teapot: LocalSale
) -> None:
    assert sale.reference == "local/local-sale"
    assert teapot.reference == "local/teapot"
    assert sale.sale_token_key != teapot.sale_token_key  # one platform key, two sale keys
    sale.stock = teapot.stock = 5
    sale.start_consumer()
    teapot.start_consumer()
    [kettle_gateway] = sale.go_live()
    [teapot_gateway] = teapot.go_live()
    alice_order = buy_and_wait_for_the_order(sale, kettle_gateway, "alice")
    bob_order = buy_and_wait_for_the_order(teapot, teapot_gateway, "bob")

    # Everything sale A's Secret holds, turned against sale B.
    a_user_token = tokens.mint(sale.sale_token_key.encode(), "bob")
    a_credential = tokens.mint_payment(sale.sale_payment_key.encode(), sale.reference)
    renamed = a_credential.replace(sale.reference, teapot.reference)  # claims to be B's: a forgery
    with teapot_gateway.client() as client:
        buy = client.post(
            teapot.order_path, headers=bearer(tokens.mint(sale.sale_token_key.encode(), "mallory"))
        )
        assert (buy.status_code, buy.json()["error"]) == (401, "unauthorized")
        view = client.get(f"/api/orders/{bob_order}", headers=bearer(a_user_token))
        assert (view.status_code, view.json()["error"]) == (401, "unauthorized")
        for credential in (a_user_token, a_credential, renamed):
            paid = client.post(f"/api/orders/{bob_order}/pay", headers=bearer(credential))
            assert (paid.status_code, paid.json()["error"]) == (401, "unauthorized"), credential
    assert orders_by_state(teapot)["ordered"] == {bob_order}  # still unpaid
    assert teapot.gate_remaining() == 4  # mallory bought nothing

    # At its own sale, a shopper's valid token still cannot pay: only the payment service can.
    with kettle_gateway.client() as client:
        own = client.post(f"/api/orders/{alice_order}/pay", headers=sale.bearer("alice"))
        assert (own.status_code, own.json()["error"]) == (403, "forbidden")
    assert orders_by_state(sale)["ordered"] == {alice_order}

    # B's own payment credential pays B's order, whoever's it is.
    with teapot_gateway.client() as client:
        paid = client.post(f"/api/orders/{bob_order}/pay", headers=teapot.payer())
    assert (paid.status_code, paid.json()) == (200, {"reservationId": bob_order, "state": "paid"})
    assert orders_by_state(teapot)["paid"] == {bob_order}
