"""The broker goes away (issue 8, acceptance 3 and 4).

3. The Kafka broker crashes mid-sale and comes back: no accepted order is lost, the gateways answer
   503 (never a 500) while it is away, and they recover by themselves.
4. Kafka is unavailable at the moment of the publish: the shopper gets 503 and the unit stays held
   for them (no gateway gives stock back: another attempt's publish of the same reservation may be
   in flight); their retry once the broker is back publishes the same reservation and gets 202. A
   shopper who never retries has the unit given back by the recovery. Whether the broker is stopped
   or hung (its sockets open, answering nothing; the publish may even land after it was given up,
   and the retry's publish lands too): one order per reservation.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from chaos.crowd import NO_ANSWER, Crowd, open_sale, shoppers
from chaos.whole import assert_sale_is_whole, read_record, topic_messages
from flashsale_dev import faults
from flashsale_dev.platform import LocalPlatform
from flashsale_dev.sale import Gateway, LocalSale
from flashsale_dev.waiting import wait_for


@pytest.mark.timeout(300)
def test_a_kafka_restart_mid_sale_loses_no_accepted_order(sale: LocalSale, platform: LocalPlatform) -> None:
    sale.stock = 1_500
    gateways, _ = open_sale(sale, gateways=2, consumers=2)
    crowd = Crowd(sale, gateways, shoppers("buyer", 3_000), concurrency=50).start()
    wait_for(lambda: len(crowd.accepted()) >= 200, timeout=120, what="200 reservations accepted")

    killed = time.monotonic()
    with faults.down(platform.kafka, crash=True):
        wait_for(
            lambda: crowd.answered(503, sent_after=killed),
            timeout=120,
            what="a shopper answered 503 while the broker is down",
        )
    back = time.monotonic()

    crowd.join()
    while_down = crowd.statuses(sent_after=killed, sent_before=back)
    assert while_down <= {202, 409, 410, 429, 503}, f"answers while the broker was down: {while_down}"
    assert NO_ANSWER not in crowd.statuses(), "a gateway dropped connections"
    assert crowd.answered(202, sent_after=back), "the gateways did not take orders again by themselves"
    record = assert_sale_is_whole(sale, crowd.accepted())
    assert record.live_units == sale.stock, record.describe()  # the demand was twice the stock


@pytest.mark.timeout(240)
def test_kafka_down_at_the_publish_keeps_the_unit_for_the_shoppers_retry(
    sale: LocalSale, platform: LocalPlatform
) -> None:
    sale.stock = 100
    (gateway,), _ = open_sale(sale, gateways=1, consumers=1)
    path = str(gateway.status()["orderPath"])
    users = shoppers("early", 20)

    with faults.down(platform.kafka, crash=False):
        statuses = asyncio.run(_buy_once(sale, gateway, path, users))
        assert statuses == [503] * len(users), statuses
        record = read_record(sale)
        assert record.gate == sale.stock - len(users), f"units were given back: {record.describe()}"
        held = {rid: user for rid, (user, _) in record.pending.items()}
        assert sorted(held.values()) == sorted(users), record.describe()
        assert not record.settled, record.describe()
        # 15 of them keep trying (each attempt touches their reservation, so it stays theirs however
        # long the broker takes to come back); once it is back, their own reservations are published
        # and answered 202. The other 5 never come back: the recovery gives their units back after
        # the deadline.
        returning, gone = users[:15], users[15:]
        crowd = Crowd(sale, [gateway], returning).start()

    crowd.join()
    accepted = crowd.accepted()
    assert accepted == {rid: user for rid, user in held.items() if user in returning}
    record = assert_sale_is_whole(sale, accepted)
    assert record.live_units == len(returning)
    assert record.settled == {rid for rid, user in held.items() if user in gone}, record.describe()
    assert record.gate == sale.stock - len(returning)
    assert sale.buyers() == len(returning)  # the 5 may buy again


@pytest.mark.timeout(240)
def test_a_hung_broker_at_the_publish_makes_one_order_of_each_reservation_its_retry_publishes_again(
    sale: LocalSale, platform: LocalPlatform
) -> None:
    sale.stock = 100
    (gateway,), _ = open_sale(sale, gateways=1, consumers=1)
    path = str(gateway.status()["orderPath"])
    users = shoppers("early", 20)

    # Hung, not gone: the publishes reach the broker's socket and are appended once it thaws, after
    # the gateway gave up on them (3 s) and answered 503. The units stay held for the shoppers.
    with faults.frozen(platform.kafka.process):
        statuses = asyncio.run(_buy_once(sale, gateway, path, users))
        record = read_record(sale)  # still frozen: no consumer has read a late publish yet
        # They keep trying: the same reservations, answered 202 once published (again, or read by a
        # consumer already); the late publish and the retry's are one order.
        crowd = Crowd(sale, [gateway], users).start()
    assert statuses == [503] * len(users), statuses
    assert record.gate == sale.stock - len(users), f"units were given back: {record.describe()}"
    held = {rid: user for rid, (user, _) in record.pending.items()}
    crowd.join()
    assert crowd.accepted() == held
    record = assert_sale_is_whole(sale, crowd.accepted())
    assert record.live_units == len(users)
    print(f"messages in the topic (gateway batches, the given-up ones included): {topic_messages(sale)}")


async def _buy_once(sale: LocalSale, gateway: Gateway, path: str, users: list[str]) -> list[int]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as client:
        answers = await asyncio.gather(
            *(client.post(path, json={"quantity": 1}, headers=sale.bearer(user)) for user in users)
        )
    return [answer.status_code for answer in answers]
