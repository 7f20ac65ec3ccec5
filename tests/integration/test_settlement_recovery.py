"""Lost reservations go back once, late ones never: the recovery against real processes and middleware.

A gateway SIGKILLed after the decrement leaves a pending reservation with no message; that one is
given back after the deadline. One whose message is in Kafka while no consumer runs is NOT given back
(the group lags), and becomes an order when the consumers come. One the record refused (a user's
second live order: a gate that erred) is given back too, although a consumer had claimed it.
"""

from __future__ import annotations

import time
from dataclasses import replace

from flashsale_consumer.recovery import recover_lost
from flashsale_dev.sale import LocalSale
from flashsale_dev.settlement import assert_reconciled, orders_by_state, reserve, settled
from flashsale_dev.waiting import wait_for
from flashsale_sale.contract import RELEASE_LUA
from flashsale_sale.lag import GroupLag


def test_a_lost_reservation_is_returned_and_a_late_one_is_ordered(sale: LocalSale) -> None:
    sale.stock = 10
    sale.prepare()
    sale.set_open(True)
    long_ago = int(time.time() * 1000) - 120_000  # far past the recovery's deadline
    [lost] = reserve(sale, ["alice"], long_ago)  # the gateway died before publishing
    [late] = reserve(sale, ["bob"], long_ago)
    sale.produce([late])  # published, but no consumer is running
    assert sale.gate_remaining() == 8

    # The recovery while the group lags: nothing concluded, nothing given back.
    lag = GroupLag(sale.kafka_bootstrap_servers, sale.topic, sale.group)
    with sale.redis() as client, sale.database(autocommit=True) as conn:
        recovered = recover_lost(
            client, conn, lag, sale.keys, now_ms=int(time.time() * 1000), older_than_ms=5_000
        )
    assert recovered.lagging
    assert recovered.released == 0
    assert sale.pending() == 2
    assert sale.gate_remaining() == 8

    consumer = sale.start_consumer(FLASHSALE_LOST_RESERVATION_SECONDS="5")
    wait_for(
        lambda: orders_by_state(sale)["ordered"] == {late.reservation_id},
        timeout=120,
        what="bob's order",
        describe=consumer.output,
    )
    wait_for(
        lambda: lost.reservation_id in settled(sale),
        timeout=120,
        what="alice's reservation given back",
        describe=consumer.output,
    )
    assert sale.gate_remaining() == 9  # alice's unit, and only hers
    assert late.reservation_id not in settled(sale)
    with sale.redis() as client:
        assert client.hget(sale.keys.buyers, "alice") is None  # she may buy again
        assert client.hget(sale.keys.buyers, "bob") == late.reservation_id.encode()
    wait_for(lambda: sale.pending() == 0, timeout=60, what="nothing pending")
    assert consumer.metric("flashsale_settlement_recovered_reservations_total") == 1
    assert consumer.metric("flashsale_stock_returned_units_total", cause="lost") == 1
    assert_reconciled(sale)


def test_a_reservation_the_record_refused_is_returned_although_claimed(sale: LocalSale) -> None:
    sale.stock = 5
    sale.prepare()
    sale.set_open(True)
    now_ms = int(time.time() * 1000)
    [first] = reserve(sale, ["carol"], now_ms)
    # A gate that erred: a second reservation for carol, its unit taken, its message published.
    second = replace(first, reservation_id="r-carol-again")
    with sale.redis() as client:
        client.decrby(sale.keys.stock, 1)
        client.hset(sale.keys.pending, second.reservation_id, f"carol 1 {now_ms - 120_000}")
    sale.produce([first, second])
    consumer = sale.start_consumer(FLASHSALE_LOST_RESERVATION_SECONDS="5")

    wait_for(
        lambda: second.reservation_id in settled(sale),
        timeout=120,
        what="the refused reservation given back",
        describe=consumer.output,
    )
    assert orders_by_state(sale)["ordered"] == {first.reservation_id}
    assert consumer.metric("flashsale_consumer_rejected_total") == 1
    assert sale.gate_remaining() == 4
    assert_reconciled(sale)


def test_a_message_of_a_released_reservation_is_skipped_by_the_consumer(sale: LocalSale) -> None:
    """A publish reported failed that reached Kafka all the same: released first, never ordered."""
    sale.stock = 3
    sale.prepare()
    sale.set_open(True)
    gone, kept = reserve(sale, ["dave", "erin"], int(time.time() * 1000))
    with sale.redis() as client:  # what the gateway does when the publish reports a failure
        assert client.eval(RELEASE_LUA, 5, *sale.keys.release_keys(), gone.reservation_id, "0") == 1
    sale.produce([gone, kept])
    consumer = sale.start_consumer()
    wait_for(lambda: sale.order_count() == 1, timeout=120, what="erin's order", describe=consumer.output)
    wait_for(lambda: sale.committed() == 2, timeout=60, what="both offsets committed")
    assert orders_by_state(sale)["ordered"] == {kept.reservation_id}
    assert consumer.metric("flashsale_consumer_given_back_skipped_total") == 1
    assert sale.gate_remaining() == 2
    assert_reconciled(sale)
