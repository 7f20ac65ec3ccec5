"""Kafka publishing with an awaitable broker acknowledgement (acks=all, idempotent producer).

The reservations published in one event-loop tick (the buyers of one gate call resume together)
go out as ONE message of records (contract.join_records): one produce, one broker ack and one
delivery report for the batch instead of one per buyer - each delivery report takes the GIL from
the event loop, and a report per buyer cost a sixth of the buy path (docs/benchmarks.md). Every
record has its own future, and they all settle together: the broker acknowledged all of them or none.

librdkafka sends on its own threads; one poll thread of ours collects the delivery reports and
hands them to the event loop in ONE call_soon_threadsafe. A 202 is answered only after its
future resolved without error.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from flashsale_sale.contract import MAX_RECORDS_PER_MESSAGE, join_records

log = logging.getLogger(__name__)

# A shopper waits for the ack; past this (FLASHSALE_PUBLISH_TIMEOUT_SECONDS, default 10 s) the publish
# counts as failed: 503, the reservation stays pending, the shopper's retry publishes it again.


class PublishFailed(Exception):
    pass


def producer_config(bootstrap_servers: str, timeout_seconds: float = 10.0) -> dict[str, Any]:
    timeout_ms = int(timeout_seconds * 1000)
    return {
        "bootstrap.servers": bootstrap_servers,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 1,  # the ack is in every answer's latency: batch for 1 ms, not librdkafka's 5
        "message.timeout.ms": timeout_ms,
        "topic.metadata.propagation.max.ms": timeout_ms,
        "socket.connection.setup.timeout.ms": 5_000,
        "compression.type": "lz4",
        "client.id": "flashsale-gateway",
        "logger": _quiet_logger(),
    }


class Publisher:
    def __init__(self, bootstrap_servers: str, topic: str, timeout_seconds: float = 10.0) -> None:
        self.topic = topic
        self._producer = Producer(producer_config(bootstrap_servers, timeout_seconds))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._records: list[bytes] = []  # this tick's records, sent together at its end
        self._waiting: list[asyncio.Future[None]] = []  # their futures, in the same order
        self._reports: list[tuple[list[asyncio.Future[None]], KafkaError | None]] = []
        self._reports_lock = threading.Lock()  # flush() on stop reports from another thread than poll()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread.start()

    def publish(self, record: bytes) -> asyncio.Future[None]:
        """Joins this tick's message; the future resolves on the broker's ack of the whole message,
        or fails with PublishFailed."""
        loop = self._loop
        assert loop is not None, "start() first"
        if not self._records:
            loop.call_soon(self._send)
        future: asyncio.Future[None] = loop.create_future()
        self._records.append(record)
        self._waiting.append(future)
        if len(self._records) >= MAX_RECORDS_PER_MESSAGE:
            self._send()  # full: this one goes now, the tick's next records start another
        return future

    def _send(self) -> None:
        if not self._records:
            return  # sent already: it filled up
        records, waiting = self._records, self._waiting
        self._records, self._waiting = [], []
        try:
            # No key: librdkafka spreads keyless messages over the partitions.
            self._producer.produce(self.topic, join_records(records), on_delivery=_Report(self, waiting))
        except (BufferError, KafkaException) as error:
            _settle([(waiting, KafkaError(KafkaError._FAIL, str(error)))])

    def reachable(self, timeout: float = 2.0) -> bool:
        """The cluster answers a metadata request and has brokers (blocking: run it off the loop)."""
        try:
            metadata = self._producer.list_topics(timeout=timeout)
        except KafkaException:
            return False
        return bool(metadata.brokers)

    def stop(self, timeout: float = 15.0) -> int:
        """Flushes what is queued (graceful stop; blocking: run it off the loop); returns what is left.
        (A tick's records are handed to librdkafka within that tick, so nothing waits in ours.)"""
        left = int(self._producer.flush(timeout))
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._hand_over()
        return left

    def _poll(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.05)
            self._hand_over()

    def report(self, futures: list[asyncio.Future[None]], error: KafkaError | None) -> None:
        with self._reports_lock:
            self._reports.append((futures, error))

    def _hand_over(self) -> None:
        if not self._reports or self._loop is None or self._loop.is_closed():
            return
        with self._reports_lock:
            reports, self._reports = self._reports, []
        self._loop.call_soon_threadsafe(_settle, reports)


class _Report:
    """The delivery callback of one message (runs on the poll thread, inside poll/flush)."""

    __slots__ = ("_futures", "_publisher")

    def __init__(self, publisher: Publisher, futures: list[asyncio.Future[None]]) -> None:
        self._publisher = publisher
        self._futures = futures

    def __call__(self, error: KafkaError | None, _: Message) -> None:
        self._publisher.report(self._futures, error)


def _settle(reports: list[tuple[list[asyncio.Future[None]], KafkaError | None]]) -> None:
    """On the event loop: every record's future of every reported message."""
    for futures, error in reports:
        for future in futures:
            if future.done():  # its buyer went away (cancelled)
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(PublishFailed(error.str()))


def _quiet_logger() -> logging.Logger:
    """librdkafka logs every refused connection; keep one line per problem at WARNING."""
    logger = logging.getLogger("flashsale_gateway.kafka")
    logger.setLevel(logging.WARNING)
    return logger
