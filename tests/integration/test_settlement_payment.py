"""Payment against expiry, with real gateways, consumers and middleware: exactly one of them wins each
order, and the stock of the expired ones - only those - goes back to the gate exactly once."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import httpx

from flashsale_dev.sale import Gateway, LocalSale
from flashsale_dev.settlement import (
    assert_reconciled,
    orders_by_state,
    reserve,
    settled,
    unreturned,
)
from flashsale_dev.waiting import wait_for

TIMEOUT = 30  # the sale's payment timeout (s); deadlines are set through the reservation times


def pay(gateway: Gateway, sale: LocalSale, reservation: str, user: str) -> httpx.Response:
    """One payment as the shop's payment service makes it (for `user`, who gave it the money; the
    service's credential is the sale's, not the user's); a 503 (a busy store) is simply retried."""
    del user
    with gateway.client() as client:
        for _ in range(20):
            answer = client.post(f"/api/orders/{reservation}/pay", headers=sale.payer())
            if answer.status_code != 503:
                return answer
        return answer


def past_deadline(sale: LocalSale) -> int:
    with sale.database() as conn:
        row = conn.execute(
            "SELECT count(*) FROM orders WHERE sale_id = %s AND expires_at <= now()", (sale.sale_id,)
        ).fetchone()
    return 0 if row is None else int(row[0])


def test_1000_payments_racing_their_own_expiry_each_end_exactly_once(sale: LocalSale) -> None:
    sale.stock = 1_000
    sale.prepare()
    sale.set_open(True)
    consumer = sale.start_consumer(FLASHSALE_PAYMENT_TIMEOUT_SECONDS=str(TIMEOUT))
    gateway = sale.start_gateway(FLASHSALE_PAYMENT_TIMEOUT_SECONDS=str(TIMEOUT))
    users = [f"payer-{i}" for i in range(1_000)]
    granted = reserve(sale, users)
    assert len(granted) == 1_000
    # Deadlines spread over 16 s, starting once the orders are surely written; and, so that both
    # outcomes happen however slow the machine, 100 orders whose deadline is an hour away (paid) and
    # 100 whose deadline passed before the payments start (expired).
    now_ms = int(time.time() * 1000)
    first_deadline_ms = now_ms + 10_000

    def reserved_at(i: int) -> int:
        if i < 100:
            return now_ms + 3_600_000
        if i >= 900:
            return now_ms - TIMEOUT * 1000 - 60_000
        return first_deadline_ms - TIMEOUT * 1000 + 20 * i

    messages = [replace(m, reserved_at_ms=reserved_at(i)) for i, m in enumerate(granted)]
    surely_paid = {m.reservation_id for m in messages[:100]}
    surely_expired = {m.reservation_id for m in messages[900:]}
    sale.produce(messages)
    wait_for(lambda: sale.order_count() == 1_000, timeout=180, what="1000 orders", describe=consumer.output)
    wait_for(lambda: past_deadline(sale) > 100, timeout=120, what="the first racing deadline")

    rng = random.Random(8)
    order = [(m.reservation_id, m.user_id) for m in messages]
    rng.shuffle(order)
    twice = set(rng.sample([rid for rid, _ in order], 100))  # paid twice at once: the same answer
    attempts = order + [(rid, user) for rid, user in order if rid in twice]
    rng.shuffle(attempts)
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda a: (a[0], pay(gateway, sale, *a)), attempts))

    by_id: dict[str, set[tuple[int, str]]] = {}
    for reservation, answer in answers:
        by_id.setdefault(reservation, set()).add((answer.status_code, answer.json().get("error", "paid")))
    assert all(len(seen) == 1 for seen in by_id.values()), "two answers for one order"
    paid_answers = {rid for rid, seen in by_id.items() if seen == {(200, "paid")}}
    expired_answers = {rid for rid, seen in by_id.items() if seen == {(409, "expired")}}
    assert len(paid_answers) + len(expired_answers) == 1_000, {s for seen in by_id.values() for s in seen}

    # Every order ends exactly paid or expired, as it was answered.
    wait_for(lambda: not orders_by_state(sale)["ordered"], timeout=120, what="every unpaid order expired")
    states = orders_by_state(sale)
    assert states["paid"] == paid_answers
    assert states["expired"] == expired_answers
    assert surely_paid <= paid_answers
    assert surely_expired <= expired_answers

    # The stock of the expired ones, only theirs, back in the gate exactly once.
    wait_for(lambda: unreturned(sale) == 0, timeout=120, what="every expired order returned")
    assert settled(sale) == expired_answers
    assert sale.gate_remaining() == len(expired_answers)
    assert sale.ledger_remaining() == len(expired_answers)
    returned = consumer.metric("flashsale_stock_returned_units_total", cause="expired")
    assert returned == len(expired_answers)
    wait_for(
        lambda: consumer.metric("flashsale_orders", state="paid") == len(paid_answers),
        timeout=60,
        what="the orders-by-state gauge",
    )
    numbers = assert_reconciled(sale)
    assert numbers["orders"] == {"paid": len(paid_answers), "expired": len(expired_answers)}


def test_the_payment_contract(sale: LocalSale) -> None:
    sale.stock = 10
    sale.prepare()
    sale.set_open(True)
    consumer = sale.start_consumer()  # the default payment window: alice pays well within it
    gateway = sale.start_gateway()
    [alice] = reserve(sale, ["alice"])

    with gateway.client() as client:
        url = f"/api/orders/{alice.reservation_id}/pay"
        waiting = client.post(url, headers=sale.payer())  # reserved, not an order yet
        assert waiting.status_code == 409
        assert waiting.json()["error"] == "not_ordered_yet"
        assert int(waiting.headers["retry-after"]) >= 1
        assert client.post(url).status_code == 401
        assert (
            client.post(
                url, headers={"Authorization": "Bearer p1.local/local-sale.9999999999.forged"}
            ).status_code
            == 401
        )
        assert client.post("/api/orders/r-nobody/pay", headers=sale.payer()).status_code == 404

        sale.produce([alice])
        wait_for(lambda: sale.order_count() == 1, timeout=120, what="alice's order", describe=consumer.output)
        # Shoppers never pay, not even their own order with their own valid token: it stays unpaid.
        refused = client.post(url, headers=sale.bearer("alice"))
        assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
        assert orders_by_state(sale)["ordered"] == {alice.reservation_id}
        for _ in range(2):  # idempotent
            paid = client.post(url, headers=sale.payer())
            assert paid.status_code == 200
            assert paid.json() == {"reservationId": alice.reservation_id, "state": "paid"}
        view = client.get(f"/api/orders/{alice.reservation_id}", headers=sale.bearer("alice")).json()
        assert view["state"] == "paid"

        # An order whose deadline passed before anyone paid: expired, never paid.
        [late] = reserve(sale, ["carol"])
        sale.produce([replace(late, reserved_at_ms=late.reserved_at_ms - 1_000_000)])  # 15 min + 100 s ago
        wait_for(
            lambda: orders_by_state(sale)["expired"] == {late.reservation_id}, timeout=120, what="expiry"
        )
        refused = client.post(f"/api/orders/{late.reservation_id}/pay", headers=sale.payer())
        assert (refused.status_code, refused.json()["error"]) == (409, "expired")
    wait_for(lambda: unreturned(sale) == 0, timeout=60, what="carol's unit returned")
    assert sale.gate_remaining() == 9  # alice's unit is sold, carol's is back
    assert_reconciled(sale)
