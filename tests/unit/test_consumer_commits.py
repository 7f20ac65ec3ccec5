"""Offset commits the broker refuses during a rebalance are not forgotten.

The consumer's position is already past a written batch, so nothing would redeliver it: a refused
commit is committed again after the next poll, for the partitions still owned; a revoked or lost
partition's offsets are dropped (its new owner starts from the last commit and redelivers, and the
orders' unique constraint writes nothing twice). librdkafka's Consumer is replaced by a scripted
stand-in here; the real group and its rebalances run in tests/e2e/test_operator_scaling.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from prometheus_client import CollectorRegistry

from flashsale_consumer import source
from flashsale_consumer.metrics import ConsumerMetrics
from flashsale_consumer.source import ReservationSource
from flashsale_sale.settings import ConsumerSettings

TOPIC = "flashsale.s1.reservations"


class ScriptedConsumer:
    """Records every commit; refuses the ones it is told to, as a broker mid-rebalance does."""

    def __init__(self, _: dict[str, Any]) -> None:
        self.commits: list[dict[int, int]] = []
        self.refuse_next = 0
        self.callbacks: dict[str, Callable[..., None]] = {}

    def subscribe(self, _: list[str], **callbacks: Callable[..., None]) -> None:
        self.callbacks = callbacks

    def consume(self, _: int, __: float) -> list[Any]:
        return []

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> list[TopicPartition]:
        assert not asynchronous
        if self.refuse_next:
            self.refuse_next -= 1
            raise KafkaException(KafkaError(KafkaError.ILLEGAL_GENERATION))
        self.commits.append({tp.partition: tp.offset for tp in offsets})
        return offsets

    def rebalance(self, event: str, *partitions: int) -> None:
        self.callbacks[event](self, [TopicPartition(TOPIC, p) for p in partitions])


@pytest.fixture
def kafka(monkeypatch: pytest.MonkeyPatch) -> tuple[ReservationSource, ScriptedConsumer]:
    made: list[ScriptedConsumer] = []

    def consumer(config: dict[str, Any]) -> ScriptedConsumer:
        made.append(ScriptedConsumer(config))
        return made[-1]

    monkeypatch.setattr(source, "Consumer", consumer)
    settings = ConsumerSettings(
        sale_name="s", sale_id="s1", stock=10,
        starts_at="2026-01-01T00:00:00Z", ends_at="2026-01-02T00:00:00Z",  # type: ignore[arg-type]
        redis_url="redis://127.0.0.1:1/0", kafka_bootstrap_servers="127.0.0.1:1",
        database_url="postgresql://x/y",  # type: ignore[arg-type]
    )  # fmt: skip
    reservations = ReservationSource(settings, ConsumerMetrics("s", registry=CollectorRegistry()))
    made[0].rebalance("on_assign", 0, 1)
    return reservations, made[0]


def test_a_refused_commit_is_committed_again_after_the_next_poll(
    kafka: tuple[ReservationSource, ScriptedConsumer],
) -> None:
    reservations, consumer = kafka
    consumer.refuse_next = 1
    assert not reservations.commit({(TOPIC, 0): 11, (TOPIC, 1): 7})
    assert consumer.commits == []
    reservations.poll_batch()
    assert consumer.commits == [{0: 11, 1: 7}]
    reservations.poll_batch()
    assert consumer.commits == [{0: 11, 1: 7}]  # once committed, never again


def test_a_later_batch_and_a_refused_one_go_together_the_higher_offset_winning(
    kafka: tuple[ReservationSource, ScriptedConsumer],
) -> None:
    reservations, consumer = kafka
    consumer.refuse_next = 1
    assert not reservations.commit({(TOPIC, 0): 11, (TOPIC, 1): 7})
    assert reservations.commit({(TOPIC, 0): 15})
    assert consumer.commits == [{0: 15, 1: 7}]


def test_a_revoked_partition_s_refused_offsets_are_left_to_its_new_owner(
    kafka: tuple[ReservationSource, ScriptedConsumer],
) -> None:
    reservations, consumer = kafka
    consumer.refuse_next = 1
    assert not reservations.commit({(TOPIC, 0): 11, (TOPIC, 1): 7})
    consumer.rebalance("on_revoke", 1)
    reservations.poll_batch()
    assert consumer.commits == [{0: 11}]


def test_a_lost_partition_s_refused_offsets_are_dropped_too(
    kafka: tuple[ReservationSource, ScriptedConsumer],
) -> None:
    reservations, consumer = kafka
    consumer.refuse_next = 1
    assert not reservations.commit({(TOPIC, 0): 11})
    consumer.rebalance("on_lost", 0)
    reservations.poll_batch()
    assert consumer.commits == []
