"""A sale's own processes crash mid-work (issue 8, acceptance 1 and 2).

1. A consumer SIGKILLed in the middle of a batch - its orders inserted, the transaction not yet
   committed - leaves nothing behind: its partitions move to the other consumer, which writes every
   order exactly once.
2. A gateway SIGKILLed mid-burst, while the broker holds its publishes unacknowledged: every
   reservation answered 202 (by either gateway) becomes an order, none is given back; a reservation
   the victim took whose buyer retried on the survivor is published again there and answered 202
   after its ack; only one nobody was answered 202 for may go back to the gate (the lost-reservation
   recovery, 8 s after its last attempt here), and the sale stays whole.
"""

from __future__ import annotations

import pytest

from chaos.crowd import Crowd, open_sale, shoppers
from chaos.whole import assert_sale_is_whole
from flashsale_dev import faults
from flashsale_dev.platform import LocalPlatform
from flashsale_dev.sale import LocalSale
from flashsale_dev.waiting import wait_for


@pytest.mark.timeout(240)
def test_a_consumer_killed_mid_batch_hands_its_partitions_over_and_nothing_is_written_twice(
    sale: LocalSale,
) -> None:
    sale.stock = 2_000
    gateways, (victim, survivor) = open_sale(sale, gateways=1, consumers=2)
    wait_for(
        lambda: (
            victim.metric("flashsale_consumer_assigned_partitions") >= 1
            and survivor.metric("flashsale_consumer_assigned_partitions") >= 1
        ),
        timeout=120,
        what="both consumers own partitions",
    )
    wait_for(lambda: sale.ledger_remaining() is not None, timeout=60, what="the sale's ledger row")

    # The ledger row held: every batch inserts its orders, then waits on the ledger, uncommitted.
    with faults.ledger_locked(sale.database_url, sale.sale_id):
        crowd = Crowd(sale, gateways, shoppers("buyer", 2_500)).start()
        wait_for(
            lambda: faults.waiting_on_locks(sale.database_url, "INSERT INTO orders") >= 2,
            timeout=120,
            what="both consumers mid-batch (their transactions waiting on the ledger)",
        )
        faults.sigkill(victim)

    wait_for(
        lambda: survivor.metric("flashsale_consumer_assigned_partitions") == 3,
        timeout=120,
        what="the killed consumer's partitions moved to the survivor",
        describe=survivor.output,
    )
    crowd.join()
    record = assert_sale_is_whole(sale, crowd.accepted())
    assert record.live_units == sale.stock, record.describe()  # the demand was above the stock
    # The victim never committed anything, so the survivor wrote every order, each once.
    assert survivor.metric("flashsale_consumer_orders_total") == len(record.orders)


@pytest.mark.timeout(240)
def test_a_gateway_killed_mid_burst_orders_every_202_and_returns_only_unanswered_reservations(
    sale: LocalSale, platform: LocalPlatform
) -> None:
    sale.stock = 800
    (victim, survivor), _ = open_sale(sale, gateways=2, consumers=2)
    crowd = Crowd(sale, [victim], shoppers("buyer", 2_000)).start()  # the burst goes to the victim
    wait_for(lambda: len(crowd.accepted()) >= 100, timeout=120, what="100 reservations accepted")

    # The broker frozen: the victim's reservations are taken from the gate, their publishes hang (or,
    # past the 3 s publish timeout, fail: 503, and their buyers' retries publish them again).
    with faults.frozen(platform.kafka.process):
        before = sale.pending()
        wait_for(
            lambda: sale.pending() >= before + 50,
            timeout=60,
            interval=0.05,
            what="reservations taken from the gate with their publishes unacknowledged",
        )
        faults.sigkill(victim)
        with sale.redis() as client:
            in_flight = {rid.decode() for rid in client.hkeys(sale.keys.pending)}
        crowd.gateways[:] = [survivor]  # the balancer drops the dead endpoint; the shoppers retry

    crowd.join()
    accepted = crowd.accepted()
    record = assert_sale_is_whole(sale, accepted)  # every 202 an order, none given back
    unsettled = [rid for rid in in_flight if rid not in record.orders and rid not in record.settled]
    assert not unsettled, f"in-flight reservations neither ordered nor returned: {unsettled[:5]}"
    returned = {rid for rid in in_flight if rid in record.settled}
    assert not returned & set(accepted), "a reservation answered 202 was given back"
    republished = sum(1 for rid in in_flight if rid in accepted)
    print(
        f"in flight at the kill: {len(in_flight)}, returned {len(returned)} (nobody answered 202),"
        f" ordered {len(in_flight) - len(returned)} ({republished} answered 202)"
    )
