"""Lost reservations go back once, late ones never: the recovery against real processes and middleware.

A gateway SIGKILLed after the decrement leaves a pending reservation with no message; that one is
given back after the deadline, counted from its last attempt by Redis' clock. One whose message is in
Kafka while no consumer runs is NOT given back (the group lags), and becomes an order when the
consumers come. One a repeat click touched while the recovery was deciding is NOT given back (its
publish may be in flight). One the record refused (a user's second live order: a gate that erred) is
given back too, although a consumer had claimed it.
"""

from __future__ import annotations

import time
from dataclasses import replace

from flashsale_consumer.recovery import recover_lost
from flashsale_dev.sale import LocalSale
from flashsale_dev.settlement import assert_reconciled, orders_by_state, reserve, settled
from flashsale_dev.waiting import wait_for
from flashsale_sale.contract import RELEASE_LUA, RESERVE_LUA, buyer_arg, parse_pending_record
from flashsale_sale.lag import GroupLag, TopicLag

# Short but safe: the deadline is twice the publish timeout plus 2 s (the consumer refuses less).
PUBLISH_TIMEOUT, DEADLINE = "3", "8"


def test_a_lost_reservation_is_returned_and_a_late_one_is_ordered(sale: LocalSale) -> None:
    sale.stock = 10
    sale.prepare()
    sale.set_open(True)
    [lost] = reserve(sale, ["alice"])  # the gateway died before publishing
    [late] = reserve(sale, ["bob"])
    sale.produce([late])  # published, but no consumer is running
    assert sale.gate_remaining() == 8

    # The recovery while the group lags: nothing concluded, nothing given back.
    lag = GroupLag(sale.kafka_bootstrap_servers, sale.topic, sale.group)
    with sale.redis() as client, sale.database(autocommit=True) as conn:
        recovered = recover_lost(client, conn, lag, sale.keys, older_than_ms=0)
    assert recovered.lagging
    assert recovered.released == 0
    assert sale.pending() == 2
    assert sale.gate_remaining() == 8

    consumer = sale.start_consumer(
        FLASHSALE_PUBLISH_TIMEOUT_SECONDS=PUBLISH_TIMEOUT, FLASHSALE_LOST_RESERVATION_SECONDS=DEADLINE
    )
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
    [first] = reserve(sale, ["carol"])
    # A gate that erred: a second reservation for carol, its unit taken, its message published.
    second = replace(first, reservation_id="r-carol-again")
    with sale.redis() as client:
        client.decrby(sale.keys.stock, 1)
        client.hset(sale.keys.pending, second.reservation_id, f"carol 1 {now_ms - 120_000}")
    sale.produce([first, second])
    consumer = sale.start_consumer(
        FLASHSALE_PUBLISH_TIMEOUT_SECONDS=PUBLISH_TIMEOUT, FLASHSALE_LOST_RESERVATION_SECONDS=DEADLINE
    )

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
    """A publish that reached the broker only after the recovery gave its reservation back (a hung
    broker held it past every deadline): released first, so never ordered."""
    sale.stock = 3
    sale.prepare()
    sale.set_open(True)
    gone, kept = reserve(sale, ["dave", "erin"])
    with sale.redis() as client:  # the recovery's release: forced, of the record as it read it
        seen = client.hget(sale.keys.pending, gone.reservation_id)
        assert client.eval(RELEASE_LUA, 5, *sale.keys.release_keys(), gone.reservation_id, "1", seen) == 1
    sale.produce([gone, kept])
    consumer = sale.start_consumer()
    wait_for(lambda: sale.order_count() == 1, timeout=120, what="erin's order", describe=consumer.output)
    wait_for(lambda: sale.committed() == 2, timeout=60, what="both offsets committed")
    assert orders_by_state(sale)["ordered"] == {kept.reservation_id}
    assert consumer.metric("flashsale_consumer_given_back_skipped_total") == 1
    assert sale.gate_remaining() == 2
    assert_reconciled(sale)


class _ARepeatClickWhileTheLagIsRead(GroupLag):
    """The group's lag, read from the broker; on the recovery's second read (after it chose its
    candidates, before it releases) the buyer clicks again and a gateway's reserve script runs."""

    def __init__(self, sale: LocalSale, user: str) -> None:
        super().__init__(sale.kafka_bootstrap_servers, sale.topic, sale.group)
        self._sale = sale
        self._user = user
        self.reads = 0

    def read(self, timeout: float = 10.0) -> TopicLag:
        self.reads += 1
        if self.reads == 2:
            with self._sale.redis() as client:
                client.eval(
                    RESERVE_LUA, 5, *self._sale.keys.reserve_keys(), buyer_arg(self._user, 1, "r-new")
                )
        return super().read(timeout)


def test_a_reservation_touched_by_a_repeat_click_during_the_recovery_is_not_given_back(
    sale: LocalSale,
) -> None:
    """The repeat click publishes the reservation again: that publish may be acknowledged (and
    answered 202) after the recovery decided, so the touch cancels the release."""
    sale.stock = 5
    sale.prepare()
    sale.set_open(True)
    [lost] = reserve(sale, ["alice"])  # no message: the gateway died before publishing
    lag = _ARepeatClickWhileTheLagIsRead(sale, "alice")
    with sale.redis() as client, sale.database(autocommit=True) as conn:
        seen = parse_pending_record(client.hget(sale.keys.pending, lost.reservation_id) or b"")
        recovered = recover_lost(client, conn, lag, sale.keys, older_than_ms=0)  # every record is a candidate
        assert lag.reads == 2  # the early read, then the one after the choice (and the click)
        assert (recovered.released, recovered.lagging) == (0, False)
        touched = parse_pending_record(client.hget(sale.keys.pending, lost.reservation_id) or b"")
        assert touched.last_attempt_ms >= seen.reserved_ms
        assert touched[:3] == seen[:3]
        assert sale.gate_remaining() == 4
        assert lost.reservation_id not in settled(sale)

        # Nobody clicks any more: judged by its last attempt, the next pass gives it back.
        again = recover_lost(client, conn, lag, sale.keys, older_than_ms=0)
    lag.close()
    assert (again.released, again.units) == (1, 1)
    assert sale.gate_remaining() == 5
    assert lost.reservation_id in settled(sale)
