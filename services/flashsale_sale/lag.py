"""The sale's consumer group lag as Kafka itself knows it: committed offsets against the log's end.

The recovery of lost reservations and the gate's rebuild both ask one question: has every message
produced so far been written to the record? Committed offsets are moved only after the database
commit (docs/consumer.md), so "lag 0 on every partition" answers yes. It is asked of the broker, not
of a consumer's local view, so it covers partitions no consumer owns right now.

The committed offsets are read through a Consumer of the group that never subscribes (so it never
joins the group nor commits), not through AdminClient.list_consumer_group_offsets: librdkafka 2.16
dereferences a NULL consumer group in an admin client when the broker answers NOT_COORDINATOR (as it
does around a broker restart) and the whole process dies with SIGSEGV (librdkafka issue 5040).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._listoffsets import OffsetSpec

REQUEST_TIMEOUT_SECONDS = 10.0


class LagUnknown(Exception):
    """Kafka did not answer: nothing may be concluded (no release, no rebuild)."""


def partition_lag(committed: int, low: int, high: int) -> int:
    """Messages of one partition not yet written to the record.

    `committed` < 0 means the group never committed here: its consumers start at the earliest message
    still in the log, so an empty partition has no lag and one with messages lags by all of them.
    """
    start = max(committed, low) if committed >= 0 else low
    return max(high - start, 0)


def unwritten_range(committed: int, low: int, high: int) -> tuple[int, int]:
    """The offsets of one partition not yet written, [first, end): `partition_lag` is end - first."""
    start = max(committed, low) if committed >= 0 else low
    return start, max(high, start)


@dataclass(frozen=True)
class TopicLag:
    by_partition: dict[int, int]
    messages_ever: int  # the sum of the high watermarks: 0 when nothing was ever produced
    # partition -> [first, end) offsets not written yet (the teardown's escape hatch records them)
    unwritten: dict[int, tuple[int, int]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.by_partition.values())


class GroupLag:
    """Asks the broker; one client of each kind for the life of the caller (they keep their connections)."""

    def __init__(self, bootstrap_servers: str, topic: str, group: str) -> None:
        self.topic = topic
        self.group = group
        self._admin = AdminClient({"bootstrap.servers": bootstrap_servers, "client.id": "flashsale-lag"})
        self._offsets_reader = Consumer(
            {
                "bootstrap.servers": bootstrap_servers,
                "group.id": group,
                "client.id": "flashsale-lag",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
            }
        )

    def close(self) -> None:
        self._offsets_reader.close()

    def read(self, timeout: float = REQUEST_TIMEOUT_SECONDS) -> TopicLag:
        """The group's lag on every partition of the topic; LagUnknown when Kafka cannot tell."""
        try:
            partitions = self._partitions(timeout)
            if not partitions:
                return TopicLag({}, 0)
            committed = self.committed_offsets(partitions, timeout)
            low = self._offsets(partitions, OffsetSpec.earliest(), timeout)  # type: ignore[no-untyped-call]
            high = self._offsets(partitions, OffsetSpec.latest(), timeout)  # type: ignore[no-untyped-call]
        except (KafkaException, TimeoutError, RuntimeError) as error:
            raise LagUnknown(str(error)) from error
        lag = {p: partition_lag(committed.get(p, -1), low[p], high[p]) for p in partitions}
        ranges = {p: unwritten_range(committed.get(p, -1), low[p], high[p]) for p in partitions}
        return TopicLag(lag, sum(high.values()), {p: r for p, r in ranges.items() if r[1] > r[0]})

    def _partitions(self, timeout: float) -> list[int]:
        metadata = self._admin.list_topics(self.topic, timeout=timeout).topics.get(self.topic)
        if metadata is None or metadata.error is not None:
            return []  # the topic does not exist: nothing was ever published to it
        return sorted(metadata.partitions)

    def committed_offsets(self, partitions: list[int], timeout: float) -> dict[int, int]:
        """The group's committed offset per partition (-1: nothing committed there)."""
        wanted = [TopicPartition(self.topic, p) for p in partitions]
        answer = self._offsets_reader.committed(wanted, timeout=timeout)
        return {tp.partition: tp.offset for tp in answer if tp.error is None}

    def _offsets(self, partitions: list[int], spec: OffsetSpec, timeout: float) -> dict[int, int]:
        futures = self._admin.list_offsets(
            {TopicPartition(self.topic, p): spec for p in partitions}, request_timeout=timeout
        )
        return {tp.partition: future.result(timeout).offset for tp, future in futures.items()}
