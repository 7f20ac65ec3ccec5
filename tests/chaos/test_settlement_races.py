"""Payment against expiry, and the expired stock sold again (issue 8, acceptance 7 and 8).

7. A thousand payments, each sent around its own order's deadline: every order ends exactly one of
   paid or expired, each payment's answer says which, and only the expired units go back to the gate.
8. A sold-out sale with a short payment timeout: the unpaid orders expire, the sale reopens, new
   buyers (and the ones who did not pay) buy exactly the expired units, and the sale ends with
   exactly its stock in live orders.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Mapping
from datetime import datetime

import httpx
import pytest

from chaos.crowd import EXPIRED, PAID, Crowd, open_sale, pay, shoppers
from chaos.whole import assert_sale_is_whole, read_record
from flashsale_dev.sale import Gateway, LocalSale
from flashsale_dev.waiting import wait_for


@pytest.mark.timeout(240)
def test_a_thousand_payments_racing_their_expiry_each_end_paid_or_expired(sale: LocalSale) -> None:
    sale.stock = 1_000
    gateways, _ = open_sale(sale, gateways=2, consumers=2, FLASHSALE_PAYMENT_TIMEOUT_SECONDS="10")
    # 50 at a time: the deadlines spread over the seconds the crowd takes, as a real sale's would.
    crowd = Crowd(sale, gateways, shoppers("payer", 1_000), concurrency=50).start()
    answers = crowd.join()
    accepted = crowd.accepted()
    assert len(accepted) == 1_000

    # Each payment is sent from 5 s before to 3 s after its order's deadline (seeded: reproducible):
    # both sides of the race happen even when a slow machine takes seconds to answer a payment.
    spread = random.Random(7)
    when = {str(r.reservation): _epoch(str(r.expires_at)) + spread.uniform(-5, 3) for r in answers.values()}
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
    assert paid, "no payment won its race"
    assert expired, "no expiry won its race"
    assert record.gate == len(expired), record.describe()  # only the expired units came back
    assert record.ledger == len(expired), record.describe()
    # Paying again changes nothing and says the same.
    again = asyncio.run(_pay_all(sale, gateways, {rid: accepted[rid] for rid in sorted(outcomes)[:200]}, {}))
    assert all(again[rid] == outcomes[rid] for rid in again)


@pytest.mark.timeout(240)
def test_unpaid_stock_is_sold_again_and_the_sale_ends_with_exactly_its_stock(sale: LocalSale) -> None:
    sale.stock = 200
    gateways, _ = open_sale(sale, gateways=2, consumers=2, FLASHSALE_PAYMENT_TIMEOUT_SECONDS="8")
    first = Crowd(sale, gateways, shoppers("first", 400)).start()
    first.join()
    first_accepted = first.accepted()
    assert len(first_accepted) == sale.stock
    for gateway in gateways:
        gateway.wait_for_state("soldout")

    payers = dict(sorted(first_accepted.items())[:100])
    assert set(asyncio.run(_pay_all(sale, gateways, payers, {})).values()) == {PAID}

    # The 100 unpaid orders expire; their units go back and the gateways say live again.
    wait_for(lambda: sale.gate_remaining() == 100, timeout=120, what="the unpaid units back in the gate")
    for gateway in gateways:
        gateway.wait_for_state("live", timeout=120)
    unpaid_users = [user for rid, user in sorted(first_accepted.items()) if rid not in payers]
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


def _epoch(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()
