"""The consumer's pure rules: decoding a batch, poison, in-batch duplicates, offsets, parameters."""

from __future__ import annotations

from dataclasses import dataclass

from flashsale_consumer.batch import decode_batch, next_offsets, order_parameters
from flashsale_consumer.source import consumer_config
from flashsale_sale.contract import ReservationMessage, join_records
from flashsale_sale.settings import ConsumerSettings

SALE = "sale-1"


@dataclass
class FakeRecord:
    raw: bytes | None
    offset_: int
    partition_: int = 0
    topic_: str = "topic"

    def topic(self) -> str | None:
        return self.topic_

    def partition(self) -> int | None:
        return self.partition_

    def offset(self) -> int | None:
        return self.offset_

    def value(self) -> bytes | None:
        return self.raw


def reservation(rid: str, quantity: int = 1, sale: str = SALE, user: str = "alice") -> ReservationMessage:
    return ReservationMessage(sale, rid, user, quantity, 1_790_000_000_000)


def test_good_messages_become_reservations_in_order() -> None:
    records = [FakeRecord(reservation(f"r-{i}", user=f"u{i}").encode(), i) for i in range(3)]
    batch = decode_batch(records, SALE, per_user_limit=1)
    assert [r.reservation_id for r in batch.reservations] == ["r-0", "r-1", "r-2"]
    assert batch.poison == []


def test_poison_is_collected_never_raised() -> None:
    bad = [
        None,
        b"",
        b"\xff\xfe",
        b"not json",
        b"[]",
        b'{"v": 2}',
        b"[" * 100_000,  # deep nesting
        b'{"v":1,"sale":"sale-1","reservationId":"r","user":"u","quantity":1e999,"reservedAtMs":1}',
        b'{"v":1,"sale":"sale-1","reservationId":"r","user":"u","quantity":0,"reservedAtMs":1}',
        reservation("r-x", sale="other").encode(),
        reservation("r-y", quantity=3).encode(),
        reservation("has space").encode(),
        reservation("r-z", user="bad user").encode(),
        ReservationMessage(SALE, "r-w", "alice", 1, 10**20).encode(),
    ]
    batch = decode_batch([FakeRecord(raw, i) for i, raw in enumerate(bad)], SALE, per_user_limit=2)
    assert batch.reservations == []
    assert [p.offset for p in batch.poison] == list(range(len(bad)))
    assert all(p.reason for p in batch.poison)


def test_a_message_carries_a_gateway_batch_and_its_poison_record_is_skipped_alone() -> None:
    value = join_records(
        [reservation("r-1", user="u1").encode(), b"not json", reservation("r-2", user="u2").encode()]
    )
    batch = decode_batch([FakeRecord(value, 4), FakeRecord(reservation("r-3").encode(), 5)], SALE, 1)
    assert [r.reservation_id for r in batch.reservations] == ["r-1", "r-2", "r-3"]
    assert [(p.offset, p.record) for p in batch.poison] == [(4, 1)]
    assert next_offsets([FakeRecord(value, 4), FakeRecord(b"", 5)]) == {("topic", 0): 6}


def test_a_reservation_twice_in_one_batch_is_written_once() -> None:
    raw = reservation("r-1").encode()
    batch = decode_batch([FakeRecord(raw, 0), FakeRecord(raw, 1)], SALE, per_user_limit=1)
    assert len(batch.reservations) == 1
    assert batch.duplicates == 1


def test_offsets_are_one_past_the_last_record_per_partition_poison_included() -> None:
    records = [FakeRecord(b"x", 5, 0), FakeRecord(b"x", 7, 0), FakeRecord(b"x", 3, 1), FakeRecord(b"x", 6, 0)]
    assert next_offsets(records) == {("topic", 0): 8, ("topic", 1): 4}
    assert next_offsets([]) == {}


def test_order_parameters_are_one_array_per_column() -> None:
    params = order_parameters(SALE, 900, [reservation("r-1", 2, user="a"), reservation("r-2", user="b")])
    assert params == {
        "sale": SALE,
        "payment_timeout": 900,
        "reservations": ["r-1", "r-2"],
        "users": ["a", "b"],
        "quantities": [2, 1],
        "reserved_ms": [1_790_000_000_000, 1_790_000_000_000],
    }


def test_consumer_config_never_commits_on_its_own_and_rebalances_cooperatively() -> None:
    settings = ConsumerSettings(
        sale_name="s",
        sale_id=SALE,
        stock=10,
        starts_at="2026-01-01T00:00:00Z",  # type: ignore[arg-type]
        ends_at="2026-01-02T00:00:00Z",  # type: ignore[arg-type]
        redis_url="redis://127.0.0.1:1/0",
        kafka_bootstrap_servers="127.0.0.1:1",
        database_url="postgresql://x/y",  # type: ignore[arg-type]
    )
    config = consumer_config(settings)
    assert config["group.id"] == f"flashsale.{SALE}.orders"
    assert config["partition.assignment.strategy"] == "cooperative-sticky"
    assert config["enable.auto.commit"] is False
    assert config["auto.offset.reset"] == "earliest"
