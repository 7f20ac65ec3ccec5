"""A 202 means published, and a reservation's time is Redis' (docs/gateway.md, docs/settlement.md).

A gateway that died between the gate and its publish leaves a reservation pending in Redis with no
Kafka record. The buyer's repeat click, on any gateway, must publish that same record and answer 202
only once the broker acknowledged it; if Kafka cannot be reached, 503 with Retry-After, and the unit
stays held for the buyer (no gateway gives stock back: the retry publishes it). Real gateways, Redis
and Kafka; "a gateway that died before its publish" is the reserve script run on its own.
"""

from __future__ import annotations

import socket
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import redis
from confluent_kafka import Consumer, TopicPartition

import flashsale_dev
from flashsale_dev.sale import Gateway, LocalSale
from flashsale_dev.settlement import reserve
from flashsale_gateway.state import rfc3339
from flashsale_sale import tokens
from flashsale_sale.contract import ReservationMessage, parse_pending_record, split_records

SKEWED_CLOCK = Path(flashsale_dev.__file__).parent / "skewed_clock"


def published(sale: LocalSale) -> list[ReservationMessage]:
    """Every reservation record in the sale's topic, read from the start of each partition."""
    reader = Consumer(
        {"bootstrap.servers": sale.kafka_bootstrap_servers, "group.id": f"reader-{uuid.uuid4().hex}"}
    )
    try:
        partitions = sorted(reader.list_topics(sale.topic, timeout=30).topics[sale.topic].partitions)
        ends = {
            p: reader.get_watermark_offsets(TopicPartition(sale.topic, p), timeout=30) for p in partitions
        }
        reader.assign([TopicPartition(sale.topic, p, low) for p, (low, _) in ends.items()])
        left = {p for p, (low, high) in ends.items() if high > low}
        records: list[ReservationMessage] = []
        while left:
            for message in reader.consume(500, timeout=5):
                if message.error() is not None:
                    continue
                records += [ReservationMessage.decode(r) for r in split_records(message.value() or b"")]
                if (message.offset() or 0) + 1 >= ends[message.partition() or 0][1]:
                    left.discard(message.partition())
        return records
    finally:
        reader.close()


def redis_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def pending_record(sale: LocalSale, reservation_id: str) -> bytes | None:
    with sale.redis() as client:
        record: bytes | None = client.hget(sale.keys.pending, reservation_id)
        return record


def buy(gateway: Gateway, sale: LocalSale, user: str, token: str | None = None) -> tuple[int, dict[str, str]]:
    with gateway.client() as client:
        answer = client.post(
            sale.order_path, headers={"Authorization": f"Bearer {token or sale.token(user)}"}
        )
    assert answer.headers["content-type"] == "application/json", answer.text
    if answer.status_code == 503:
        assert int(answer.headers["retry-after"]) >= 1
    return answer.status_code, answer.json()


def cut_off_from_kafka(sale: LocalSale, port: int) -> Gateway:
    """A gateway that reaches Redis but no Kafka broker (none listens where it looks): every publish
    fails after its 2 s publish timeout. Never ready (/readyz checks Kafka), so not waited for."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        nowhere = f"127.0.0.1:{free.getsockname()[1]}"
    admin_port = sale._port(None)
    env = sale.env(
        FLASHSALE_PORT=str(port),
        FLASHSALE_ADMIN_PORT=str(admin_port),
        FLASHSALE_KAFKA_BOOTSTRAP_SERVERS=nowhere,
        FLASHSALE_PUBLISH_TIMEOUT_SECONDS="2",
    )
    gateway = Gateway("gateway-cut-off", port, admin_port, sale.logs / "gateway-cut-off.log", env)
    sale.processes.append(gateway)
    gateway.start()
    gateway.wait_for_state("live")
    return gateway


def test_a_repeat_click_publishes_a_reservation_whose_first_publish_never_happened(sale: LocalSale) -> None:
    sale.stock = 10
    [gateway] = sale.go_live()
    [lost] = reserve(sale, ["alice"])  # the gate said yes, then the gateway died before publishing
    assert published(sale) == []

    status, body = buy(gateway, sale, "alice")

    assert status == 202, body
    assert body["reservationId"] == lost.reservation_id
    # The 202 came after the broker had the reservation's record: the same one the first attempt
    # would have published (id, user, quantity and the gate's reservation time).
    assert published(sale) == [lost]
    assert sale.gate_remaining() == 9  # the same unit: nothing new taken from the gate
    record = parse_pending_record(pending_record(sale, lost.reservation_id) or b"")
    assert record.reserved_ms == lost.reserved_at_ms
    assert record.last_attempt_ms >= lost.reserved_at_ms  # touched: the recovery counts from here
    # Asked again on the same replica: its answer, and no second publish.
    assert buy(gateway, sale, "alice") == (202, body)
    assert published(sale) == [lost]


def test_with_kafka_out_of_reach_a_repeat_gets_503_and_keeps_its_unit_until_a_retry_publishes_it(
    sale: LocalSale,
) -> None:
    sale.stock = 10
    assert sale.reserve_port is not None
    sale.prepare()
    sale.set_open(True)
    cut_off = cut_off_from_kafka(sale, sale.reserve_port())
    [lost] = reserve(sale, ["alice"])

    status, body = buy(cut_off, sale, "alice")  # the repeat, on a gateway that cannot publish
    assert (status, body["error"]) == (503, "unavailable"), body
    status, body = buy(cut_off, sale, "bob")  # a new reservation there: taken, never published
    assert (status, body["error"]) == (503, "unavailable"), body

    # Nothing was given back: both units stay held for their buyers, neither is in Kafka.
    assert sale.gate_remaining() == 8
    with sale.redis() as client:
        bobs = (client.hget(sale.keys.buyers, "bob") or b"").decode()
        assert client.scard(sale.keys.settled) == 0
    assert pending_record(sale, lost.reservation_id) is not None
    assert pending_record(sale, bobs) is not None
    assert published(sale) == []

    # Their retries reach a gateway that can publish: the same reservations, published, then 202.
    healthy = sale.start_gateway()
    healthy.wait_for_state("live")
    for user, reservation in (("alice", lost.reservation_id), ("bob", bobs)):
        status, body = buy(healthy, sale, user)
        assert (status, body["reservationId"]) == (202, reservation), body
    assert sorted(r.reservation_id for r in published(sale)) == sorted([lost.reservation_id, bobs])
    assert sale.gate_remaining() == 8


def test_the_reservation_time_is_redis_clock_even_when_the_gateway_clock_is_off(sale: LocalSale) -> None:
    """A gateway whose clock is 10 minutes behind: the reservation's time, in the gate and in Kafka,
    and the 202's expiresAt all follow Redis' clock."""
    sale.stock = 10
    sale.prepare()
    sale.set_open(True)
    behind = sale.start_gateway(PYTHONPATH=str(SKEWED_CLOCK), SKEWED_CLOCK_SECONDS="-600")
    behind.wait_for_state("live")
    # Proof that its clock is behind: a token that expired 5 minutes ago is still good to it.
    expired_token = tokens.mint(sale.sale_token_key.encode(), "alice", ttl_seconds=300, now=time.time() - 600)

    with sale.redis() as client:
        before = redis_ms(client)
        status, body = buy(behind, sale, "alice", expired_token)
        after = redis_ms(client)
    assert status == 202, body

    [record] = published(sale)
    assert record.reservation_id == body["reservationId"]
    assert before <= record.reserved_at_ms <= after  # Redis' clock, not the gateway's
    assert parse_pending_record(pending_record(sale, record.reservation_id) or b"").reserved_ms == (
        record.reserved_at_ms
    )
    expires = datetime.fromtimestamp(record.reserved_at_ms / 1000 + 900, UTC)  # the default payment timeout
    assert body["expiresAt"] == rfc3339(expires)
