"""Unpaid stock is sold again: a sold-out sale reopens when its orders expire, the gateways learn it,
new buyers take the same units, and the sale ends with live orders == stock exactly."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from flashsale_dev.sale import Gateway, LocalSale
from flashsale_dev.settlement import assert_reconciled, orders_by_state, set_deadlines, unreturned
from flashsale_dev.waiting import wait_for


def buy(gateway: Gateway, sale: LocalSale, user: str) -> httpx.Response:
    with gateway.client() as client:
        return client.post(sale.order_path, headers=sale.bearer(user))


def pay_when_ordered(gateway: Gateway, sale: LocalSale, reservation: str, user: str) -> None:
    def paid() -> bool:
        with gateway.client() as client:
            answer = client.post(f"/api/orders/{reservation}/pay", headers=sale.payer())  # for `user`
        assert answer.status_code in (200, 409, 503), answer.text
        assert answer.status_code != 409 or answer.json()["error"] == "not_ordered_yet", answer.text
        return answer.status_code == 200

    wait_for(paid, timeout=60, interval=0.1, what=f"{user}'s payment")


def test_a_sold_out_sale_reopens_when_unpaid_orders_expire_and_sells_the_units_again(sale: LocalSale) -> None:
    sale.stock = 20
    sale.prepare()
    sale.set_open(True)
    # The default payment window (15 minutes): the second wave pays well within it however slow the
    # machine; the first wave's deadlines are made to pass when the test says so.
    consumer = sale.start_consumer()
    gateways = [sale.start_gateway() for _ in range(2)]
    for gateway in gateways:
        gateway.wait_for_state("live")

    first = {}
    for i in range(20):
        answer = buy(gateways[i % 2], sale, f"first-{i}")
        assert answer.status_code == 202, answer.text
        first[f"first-{i}"] = answer.json()["reservationId"]
    assert buy(gateways[0], sale, "late").status_code == 410
    for gateway in gateways:
        gateway.wait_for_state("soldout")

    # Nobody pays: their deadlines pass, the orders expire, their units go back, the sale is live
    # again on every gateway.
    wait_for(
        lambda: orders_by_state(sale)["ordered"] == set(first.values()),
        timeout=120,
        what="the first wave's orders",
        describe=consumer.output,
    )
    set_deadlines(sale, dict.fromkeys(first.values(), -1.0))
    wait_for(
        lambda: orders_by_state(sale)["expired"] == set(first.values()),
        timeout=120,
        what="the unpaid orders expired",
        describe=consumer.output,
    )
    for gateway in gateways:
        gateway.wait_for_state("live")
    wait_for(lambda: unreturned(sale) == 0, timeout=60, what="every expired unit returned")
    assert sale.gate_remaining() == 20
    assert_reconciled(sale)

    second = {}
    for i, user in enumerate(["first-0", *(f"second-{i}" for i in range(1, 20))]):
        answer = buy(gateways[i % 2], sale, user)
        assert answer.status_code == 202, answer.text
        second[user] = answer.json()["reservationId"]
    assert second["first-0"] != first["first-0"]  # a new reservation, not the expired one's answer
    assert buy(gateways[1], sale, "later").status_code == 410
    with ThreadPoolExecutor(max_workers=8) as pool:
        payments = [
            pool.submit(pay_when_ordered, gateways[i % 2], sale, reservation, user)
            for i, (user, reservation) in enumerate(second.items())
        ]
        for payment in payments:
            payment.result()

    states = orders_by_state(sale)
    assert states["paid"] == set(second.values())
    assert states["expired"] == set(first.values())
    assert not states["ordered"]
    assert sale.gate_remaining() == 0
    assert sale.ledger_remaining() == 0
    for gateway in gateways:
        gateway.wait_for_state("soldout")
    numbers = assert_reconciled(sale)
    assert numbers["live_units"] == sale.stock  # orders (paid + unexpired) == stock, exactly
    assert consumer.metric("flashsale_stock_returned_units_total", cause="expired") == 20
