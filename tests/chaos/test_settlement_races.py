"""Payment against expiry, and the expired stock sold again (issue 8, acceptance 7 and 8).

7. A thousand payments, each sent around its own order's deadline: every order ends exactly one of
   paid or expired, each payment's answer says which, and only the expired units go back to the gate.
8. A sold-out sale whose unpaid orders pass their deadline: they expire, the sale reopens, new
   buyers (and the ones who did not pay) buy exactly the expired units, and the sale ends with
   exactly its stock in live orders.

The sales run with the default payment window (15 minutes), so no buyer and no payment races a short
window on a busy machine; where a deadline is the point, the test moves it in the record
(`set_deadlines`) - what the clock would do, at the moment the test chooses - and waits for what
follows (the expiry), never assuming it has not happened yet.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Mapping

import httpx
import pytest

from chaos.crowd import EXPIRED, PAID, Crowd, open_sale, pay, shoppers
from chaos.whole import assert_sale_is_whole, read_record
from flashsale_dev.sale import Gateway, LocalSale
from flashsale_dev.settlement import set_deadlines
from flashsale_dev.waiting import wait_for


@pytest.mark.timeout(240)
def test_a_thousand_payments_racing_their_expiry_each_end_paid_or_expired(sale: LocalSale) -> None:
    sale.stock = 1_000
    gateways, _ = open_sale(sale, gateways=2, consumers=2)
    crowd = Crowd(sale, gateways, shoppers("payer", 1_000), concurrency=50).start()
    crowd.join()
    accepted = crowd.accepted()
    assert len(accepted) == 1_000
    wait_for(lambda: sale.order_count() == 1_000, timeout=120, what="1000 orders")

    # The deadlines: 800 spread over 10 s from 10 s on, each paid from 5 s before to 3 s after its
    # own (seeded: reproducible); and, so that both outcomes surely happen however slow the machine,
    # 100 an hour away (paid) and 100 passed (paid only once the expiry took them).
    spread = random.Random(7)
    ids = sorted(accepted)
    spread.shuffle(ids)
    surely_paid, surely_expired, racing = ids[:100], ids[100:200], ids[200:]
    moved = {rid: 10 + 10 * i / len(racing) for i, rid in enumerate(racing)}
    moved |= dict.fromkeys(surely_paid, 3_600.0) | dict.fromkeys(surely_expired, -1.0)
    deadlines = set_deadlines(sale, moved)
    assert len(deadlines) == 1_000
    wait_for(
        lambda: set(surely_expired) <= set(read_record(sale).in_state("expired")),
        timeout=120,
        what="the orders whose deadline passed expired",
    )
    when = {rid: deadlines[rid] + spread.uniform(-5, 3) for rid in racing}
    outcomes = asyncio.run(_pay_all(sale, gateways, accepted, when))
    assert set(outcomes.values()) <= {PAID, EXPIRED}, Counter(outcomes.values())

    wait_for(
        lambda: not read_record(sale).in_state("ordered"),
        timeout=120,
        what="every order paid or expired",
        describe=lambda: read_record(sale).describe(),
    )
    record = assert_sale_is_whole(sale, accepted)
    paid, expired = set(record.in_state("paid")), set(record.in_state("expired"))
    assert paid == {rid for rid, outcome in outcomes.items() if outcome == PAID}
    assert expired == {rid for rid, outcome in outcomes.items() if outcome == EXPIRED}
    print(f"{len(paid)} paid, {len(expired)} expired")
    assert set(surely_paid) <= paid
    assert set(surely_expired) <= expired
    assert record.gate == len(expired), record.describe()  # only the expired units came back
    assert record.ledger == len(expired), record.describe()
    # Paying again changes nothing and says the same.
    again = asyncio.run(_pay_all(sale, gateways, {rid: accepted[rid] for rid in sorted(outcomes)[:200]}, {}))
    assert all(again[rid] == outcomes[rid] for rid in again)


@pytest.mark.timeout(240)
def test_unpaid_stock_is_sold_again_and_the_sale_ends_with_exactly_its_stock(sale: LocalSale) -> None:
    sale.stock = 200
    gateways, _ = open_sale(sale, gateways=2, consumers=2)
    first = Crowd(sale, gateways, shoppers("first", 400)).start()
    first.join()
    first_accepted = first.accepted()
    assert len(first_accepted) == sale.stock
    for gateway in gateways:
        gateway.wait_for_state("soldout")

    payers = dict(sorted(first_accepted.items())[:100])
    assert set(asyncio.run(_pay_all(sale, gateways, payers, {})).values()) == {PAID}

    # The 100 unpaid orders pass their deadline and expire; their units go back and the gateways
    # say live again.
    unpaid = [rid for rid in sorted(first_accepted) if rid not in payers]
    wait_for(lambda: sale.order_count() == sale.stock, timeout=120, what="every order written")
    assert len(set_deadlines(sale, dict.fromkeys(unpaid, -1.0))) == 100
    wait_for(lambda: sale.gate_remaining() == 100, timeout=120, what="the unpaid units back in the gate")
    for gateway in gateways:
        gateway.wait_for_state("live", timeout=120)
    unpaid_users = [first_accepted[rid] for rid in unpaid]
    second = Crowd(sale, gateways, shoppers("second", 250) + unpaid_users[:50], pay_on_accept=True).start()
    second.join()
    second_accepted = second.accepted()
    assert len(second_accepted) == 100, "the expired units were not sold exactly once more"
    assert Counter(second.payments.values()) == {PAID: 100}

    record = assert_sale_is_whole(sale, {**first_accepted, **second_accepted})
    assert len(record.in_state("paid")) == sale.stock, record.describe()
    assert len(record.in_state("expired")) == 100, record.describe()
    assert record.live_units == sale.stock, record.describe()
    assert (record.gate, record.ledger) == (0, 0), record.describe()


async def _pay_all(
    sale: LocalSale, gateways: list[Gateway], owners: Mapping[str, str], when: Mapping[str, float]
) -> dict[str, str]:
    """Pays each reservation for its owner at `when[id]` (epoch seconds; at once if absent) until the
    outcome is final (paid or expired); returns the outcomes."""
    # No queue on our side: each payment leaves at its moment (the gateways may queue it).
    limits = httpx.Limits(max_connections=len(owners), max_keepalive_connections=len(owners))
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def one(index: int, reservation: str, user: str) -> tuple[str, str]:
            await asyncio.sleep(max(0.0, when.get(reservation, 0.0) - time.time()))  # its moment
            token = sale.payment_credential()  # the shop's payment service, paying for `user`
            give_up = time.monotonic() + 120
            while True:
                outcome = await pay(client, gateways[index % len(gateways)], token, reservation)
                if outcome in (PAID, EXPIRED) or time.monotonic() > give_up:
                    return reservation, outcome
                await asyncio.sleep(0.1)  # not an order yet, or a store away: the service retries

        done = await asyncio.gather(*(one(i, rid, user) for i, (rid, user) in enumerate(owners.items())))
    return dict(done)
