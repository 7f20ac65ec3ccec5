"""The Kafka side: the group membership, the batches, the offset commits and the lag.

Cooperative-sticky assignment, so adding or removing a consumer (the autoscaler does) moves only the
partitions that change owner instead of stopping the whole group. Offsets are never committed
automatically: only `commit()` after the database commit, synchronously. The runner finishes a
batch before it polls again, and a revocation is only delivered inside a poll, so a partition is
never taken away with a written but uncommitted batch on it - and if it were (a lost membership), the
next owner's redelivery writes nothing twice.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from flashsale_consumer.metrics import ConsumerMetrics
from flashsale_sale.settings import ConsumerSettings

log = logging.getLogger(__name__)

_NO_OFFSET = -1001  # librdkafka's OFFSET_INVALID


def consumer_config(settings: ConsumerSettings) -> dict[str, Any]:
    """The librdkafka settings; pure, so the choices are tested and documented in one place."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "group.id": settings.group,
        "client.id": f"flashsale-consumer-{settings.sale_id}-{socket.gethostname()}",
        "partition.assignment.strategy": "cooperative-sticky",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # A crashed consumer's partitions move on within seconds, not the default 45: lag is what a
        # flash sale cannot afford. Heartbeats run on librdkafka's own thread.
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 2_000,
        "enable.partition.eof": False,
        # librdkafka prefetches up to 64 MB per consumer by default; 16 MB still holds ~100k
        # reservations (a few hundred batches) and keeps the pod's memory small.
        "queued.max.messages.kbytes": 16_384,
    }


class ReservationSource:
    def __init__(self, settings: ConsumerSettings, metrics: ConsumerMetrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._assigned: set[tuple[str, int]] = set()
        # Offsets whose commit the broker refused (a rebalance in progress: ILLEGAL_GENERATION): the
        # position is already past them, so nothing would redeliver them to us; they are committed
        # again after the next poll for the partitions still ours (a revoked one is the new owner's).
        self._unsent: dict[tuple[str, int], int] = {}
        self._consumer = Consumer(consumer_config(settings))
        self._consumer.subscribe(
            [settings.topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )

    def poll_batch(self) -> list[Message]:
        """Up to batch_size messages, waiting at most batch_timeout; transport errors are logged here."""
        messages = self._consumer.consume(self._settings.batch_size, self._settings.batch_timeout_seconds)
        if self._unsent:
            self.commit({})
        good = []
        for message in messages:
            error = message.error()
            if error is None:
                good.append(message)
            elif error.fatal():
                raise KafkaException(error)
            else:
                log.warning("kafka: %s", error)
        return good

    def commit(self, offsets: dict[tuple[str, int], int]) -> bool:
        """Commits synchronously, with any earlier refused offsets of partitions still ours; False if the
        broker refused (they are tried again after the next poll; a new owner would redeliver them,
        writing nothing twice)."""
        wanted = {key: offset for key, offset in self._unsent.items() if key in self._assigned}
        for key, offset in offsets.items():
            wanted[key] = max(offset, wanted.get(key, offset))
        self._unsent = {}
        if not wanted:
            return True
        partitions = [
            TopicPartition(topic, partition, offset) for (topic, partition), offset in wanted.items()
        ]
        try:
            results = self._consumer.commit(offsets=partitions, asynchronous=False)
        except KafkaException as error:
            log.warning("offset commit refused (tried again after the next poll): %s", error)
            self._metrics.commit_errors.labels(self._metrics.sale).inc()
            self._unsent = wanted
            return False
        failed = [tp for tp in results or [] if tp.error is not None]
        if failed:
            log.warning("offset commit refused for %s", [(tp.partition, str(tp.error)) for tp in failed])
            self._metrics.commit_errors.labels(self._metrics.sale).inc()
            self._unsent = {(tp.topic, tp.partition): wanted[(tp.topic, tp.partition)] for tp in failed}
            return False
        return True

    def lag(self) -> dict[int, int]:
        """Per assigned partition: high watermark - position, from librdkafka's cache (no round trip)."""
        assigned = [TopicPartition(topic, partition) for topic, partition in self._assigned]
        if not assigned:
            return {}
        lag: dict[int, int] = {}
        for tp in self._consumer.position(assigned):
            low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high < 0:
                continue  # nothing fetched yet: unknown, rather than a made-up number
            start = tp.offset if tp.offset >= 0 else max(low, 0)
            lag[tp.partition] = max(high - start, 0)
        return lag

    def close(self) -> None:
        """Leaves the group at once, so the partitions move on without waiting for the session timeout."""
        try:
            self._consumer.close()
        except (KafkaException, RuntimeError) as error:
            log.warning("closing the kafka consumer: %s", error)

    def _on_assign(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned |= {(tp.topic, tp.partition) for tp in partitions}
        self._report("assigned", partitions)

    def _on_revoke(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned -= {(tp.topic, tp.partition) for tp in partitions}
        for tp in partitions:
            self._unsent.pop((tp.topic, tp.partition), None)
        self._report("revoked", partitions)

    def _on_lost(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned -= {(tp.topic, tp.partition) for tp in partitions}
        for tp in partitions:
            self._unsent.pop((tp.topic, tp.partition), None)
        self._report("lost", partitions)

    def _report(self, what: str, partitions: list[TopicPartition]) -> None:
        now = sorted(partition for _, partition in self._assigned)
        log.info("partitions %s: %s; now %s", what, sorted(tp.partition for tp in partitions), now)
        self._metrics.assigned.labels(self._metrics.sale).set(len(self._assigned))
