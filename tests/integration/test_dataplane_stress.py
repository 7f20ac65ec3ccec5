"""A crowd against one sale: two gateway processes, two consumer processes, real Redis, Kafka, PostgreSQL.

Whatever the crowd does - thousands of distinct shoppers at once, repeat clicks, quantities - the
sale ends with exactly its stock reserved, every accepted reservation (202) an order in PostgreSQL,
no order without a 202, and nobody above the per-user limit.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass

import httpx

from flashsale_dev.sale import Gateway, LocalSale
from flashsale_dev.waiting import wait_for

CONCURRENCY = 200
DEFINITIVE = {202, 409, 410}  # a shopper stops asking on these; 429/503 mean "try again later"


@dataclass(frozen=True)
class Click:
    user: str
    quantity: int


@dataclass(frozen=True)
class Answer:
    user: str
    quantity: int
    status: int
    reservation: str | None


def run_sale(sale: LocalSale, clicks: list[Click]) -> list[Answer]:
    gateways = sale.go_live(gateways=2)
    for _ in range(2):
        sale.start_consumer()
    order_path = gateways[0].status()["orderPath"]  # what the sale page learns once the sale is live
    return asyncio.run(crowd(gateways, str(order_path), sale, clicks))


async def crowd(gateways: list[Gateway], path: str, sale: LocalSale, clicks: list[Click]) -> list[Answer]:
    """Every shopper clicks until the answer is definitive, spread over the gateways like a balancer."""
    tokens = {click.user: sale.token(click.user) for click in clicks}
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    slots = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:

        async def shopper(index: int, click: Click) -> Answer:
            async with slots:
                for attempt in range(1000):
                    url = gateways[(index + attempt) % len(gateways)].url + path
                    try:
                        answer = await client.post(
                            url,
                            json={"quantity": click.quantity},
                            headers={"Authorization": f"Bearer {tokens[click.user]}"},
                        )
                    except httpx.TransportError:
                        # What a shopper's browser does on a dropped connection: ask again. Safe,
                        # since a user's repeat gets the same reservation back.
                        continue
                    if answer.status_code in DEFINITIVE:
                        body = answer.json()
                        return Answer(
                            click.user, click.quantity, answer.status_code, body.get("reservationId")
                        )
                    assert answer.status_code in {429, 503}, answer.text
                    await asyncio.sleep(min(float(answer.headers.get("Retry-After", "0.05")), 0.2))
                raise AssertionError(f"{click.user} never got a definitive answer")

        return await asyncio.gather(*(shopper(i, click) for i, click in enumerate(clicks)))


def check_the_record(sale: LocalSale, answers: list[Answer]) -> None:
    accepted = [a for a in answers if a.status == 202]
    by_user: dict[str, set[str]] = {}
    for answer in accepted:
        by_user.setdefault(answer.user, set()).add(str(answer.reservation))
    assert all(len(ids) == 1 for ids in by_user.values()), "a user got two reservations"
    reserved = {next(iter(ids)): user for user, ids in by_user.items()}
    units = {a.user: a.quantity for a in accepted}

    def all_ordered() -> list[tuple[str, str, int]] | None:
        found = sale.orders()
        return found if len(found) >= len(reserved) else None

    orders = wait_for(
        all_ordered,
        timeout=300,
        what=f"{len(reserved)} orders in PostgreSQL",
        describe=lambda: f"orders so far: {len(sale.orders())}",
    )
    assert {rid for rid, _, _ in orders} == set(reserved), "the orders are not exactly the accepted 202s"
    assert all(reserved[rid] == user and units[user] == qty for rid, user, qty in orders)
    per_user = Counter(user for _, user, _ in orders)
    assert max(per_user.values(), default=0) == 1
    sold = sum(qty for _, _, qty in orders)
    assert sold <= sale.stock, "oversold"
    assert sale.ledger_remaining() == sale.stock - sold
    assert sale.gate_remaining() == sale.stock - sold


def test_twenty_thousand_shoppers_buy_exactly_the_stock(sale: LocalSale) -> None:
    users = [f"shopper-{i}" for i in range(20_000)]
    repeats = random.Random(7).sample(users, 2_000)
    clicks = [Click(user, 1) for user in users + repeats]
    random.Random(8).shuffle(clicks)
    answers = run_sale(sale, clicks)

    assert sum(1 for a in answers if a.status == 202) >= 1000
    assert {a.status for a in answers} <= DEFINITIVE
    check_the_record(sale, answers)
    assert len({a.reservation for a in answers if a.status == 202}) == 1000


def test_quantities_up_to_the_limit_of_two(sale: LocalSale) -> None:
    sale.per_user_limit = 2
    pick = random.Random(9)
    users = [f"pair-{i}" for i in range(20_000)]
    clicks = [Click(user, pick.choice((1, 2))) for user in users]
    clicks += [Click(c.user, c.quantity) for c in pick.sample(clicks, 2_000)]
    pick.shuffle(clicks)
    answers = run_sale(sale, clicks)

    check_the_record(sale, answers)
    units = {a.reservation: a.quantity for a in answers if a.status == 202}
    assert sum(units.values()) == sale.stock, "the sale did not sell exactly its stock"


def test_everyone_who_asks_gets_one_when_stock_exceeds_demand(sale: LocalSale) -> None:
    sale.stock = 3_000
    clicks = [Click(f"lucky-{i}", 1) for i in range(2_000)]
    answers = run_sale(sale, clicks)

    assert all(a.status == 202 for a in answers)
    check_the_record(sale, answers)
    assert sale.ledger_remaining() == 1_000
