"""Redis loses the sale's keys mid-sale: gateways fail closed (503, never an accept, never a "paused"
404), consumers write what Kafka holds but no stock, and only `flashsale prewarm` rebuilds the gate,
from the record, once the topic is drained. Nothing is oversold and `flashsale reconcile` passes."""

from __future__ import annotations

import time
from dataclasses import replace

import httpx

from flashsale_dev.sale import Gateway, LocalSale
from flashsale_dev.settlement import (
    assert_reconciled,
    flashsale,
    orders_by_state,
    prewarm,
    reconcile,
    reserve,
    settled,
)
from flashsale_dev.waiting import wait_for


def buy(gateway: Gateway, sale: LocalSale, user: str) -> httpx.Response:
    with gateway.client() as client:
        return client.post(sale.order_path, headers=sale.bearer(user))


def test_a_flushed_redis_fails_closed_and_prewarm_rebuilds_the_gate_from_the_record(sale: LocalSale) -> None:
    sale.stock = 30
    sale.prepare()
    sale.set_open(True)
    consumer = sale.start_consumer(FLASHSALE_PAYMENT_TIMEOUT_SECONDS="120")
    gateway = sale.start_gateway(FLASHSALE_PAYMENT_TIMEOUT_SECONDS="120")
    gateway.wait_for_state("live")
    bought = {}
    for i in range(10):
        answer = buy(gateway, sale, f"user-{i}")
        assert answer.status_code == 202, answer.text
        bought[f"user-{i}"] = answer.json()["reservationId"]
    # One more whose order expires at once (its unit goes back: the rebuild must not count it twice).
    [late] = reserve(sale, ["late"])
    sale.produce([replace(late, reserved_at_ms=late.reserved_at_ms - 600_000)])
    wait_for(lambda: late.reservation_id in settled(sale), timeout=120, what="the late order returned")
    wait_for(lambda: sale.order_count() == 11, timeout=120, what="11 orders", describe=consumer.output)
    assert_reconciled(sale)

    with sale.redis() as client:
        client.flushdb()  # a restart without persistence

    # Fail closed: no accept, no "paused"; the old buyers' answers are not served from the lost gate.
    def refused_with_503() -> bool:
        return buy(gateway, sale, "newcomer").status_code == 503

    wait_for(refused_with_503, timeout=60, what="503 from the gateway")
    assert buy(gateway, sale, "user-3").status_code in (202, 503)  # its own cached answer, or 503
    assert sale.gate_remaining() is None  # nobody wrote stock back
    code, numbers = reconcile(sale)
    assert code == 1
    assert "flashsale prewarm" in numbers["problems"][0]

    # A reservation accepted before the loss, still on its way to the record: the rebuild waits for it.
    in_flight = replace(late, reservation_id="r-in-flight", user_id="flight")
    sale.produce([replace(in_flight, reserved_at_ms=int(time.time() * 1000))])
    done = prewarm(sale, "--settle-seconds", "1", "--open")
    assert done.returncode == 0, done.stderr
    assert "rebuilt" in done.stdout
    states = orders_by_state(sale)
    assert len(states["ordered"]) == 11  # the ten, and the one in flight
    assert states["expired"] == {late.reservation_id}
    assert sale.gate_remaining() == 30 - 11
    assert_reconciled(sale)

    again = prewarm(sale)
    assert again.returncode == 0, again.stderr
    assert "already built" in again.stdout

    gateway.wait_for_state("live")
    repeat = buy(gateway, sale, "user-3")  # the rebuilt buyers: the same reservation, no new unit
    assert repeat.status_code == 202
    assert repeat.json()["reservationId"] == bought["user-3"]
    for i in range(19):
        assert buy(gateway, sale, f"after-{i}").status_code == 202
    assert buy(gateway, sale, "one-too-many").status_code == 410
    wait_for(lambda: sale.order_count() == 31, timeout=120, what="31 orders", describe=consumer.output)
    assert len(orders_by_state(sale)["ordered"]) == 30  # sold exactly once each
    assert sale.ledger_remaining() == 0
    assert_reconciled(sale)


def test_prewarm_builds_once_and_never_rebuilds_a_retired_sale(sale: LocalSale) -> None:
    sale.migrate()
    first = prewarm(sale)
    assert first.returncode == 0, first.stderr
    assert "gate built" in first.stdout
    assert sale.gate_remaining() == sale.stock
    assert "already built" in prewarm(sale).stdout

    retired = flashsale(sale, "retire", "--sale", sale.sale_id)
    assert retired.returncode == 0, retired.stderr
    assert sale.gate_remaining() is None
    refused = prewarm(sale)
    assert refused.returncode == 1
    assert "retired" in refused.stderr
    assert sale.gate_remaining() is None
    assert_reconciled(sale)  # a retired sale without its gate: the record alone is checked
