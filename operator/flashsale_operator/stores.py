"""The operator's edge to the middleware: Redis (the gate), PostgreSQL (the record), Kafka (the topics).

Synchronous clients, called from a thread pool (`asyncio.to_thread`) so the event loop that flips
flags on the second is never blocked. One Redis pool for every sale; one database connection per
call (a handful per second at most); one Kafka admin client per bootstrap (the platform's Kafka, and
each dedicated queue's broker, forgotten when its sale is torn down).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import redis
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic  # type: ignore[attr-defined]

from flashsale_operator.config import OperatorConfig
from flashsale_operator.phases import Gate
from flashsale_sale import db, gate
from flashsale_sale.contract import SaleKeys, consumer_group
from flashsale_sale.lag import GroupLag, TopicLag
from flashsale_sale.prewarm import Built, SaleSpec, prewarm_sale, retire_sale

log = logging.getLogger(__name__)

KAFKA_TIMEOUT_SECONDS = 10.0
BROKER_PROBE_SECONDS = 2.0


class Stores:
    def __init__(self, config: OperatorConfig) -> None:
        self.config = config
        self.redis = redis.Redis.from_url(config.redis_url, socket_timeout=5, socket_connect_timeout=5)
        self._admins: dict[str, AdminClient] = {}
        self._admins_lock = threading.Lock()
        self._admin(config.kafka_bootstrap_servers)

    def _admin(self, bootstrap: str) -> AdminClient:
        with self._admins_lock:
            admin = self._admins.get(bootstrap)
            if admin is None:
                admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": "flashsale-operator"})
                self._admins[bootstrap] = admin
            return admin

    def forget(self, bootstrap: str) -> None:
        """Drops the admin client of a broker that is going away (a dedicated queue's, at teardown)."""
        if bootstrap == self.config.kafka_bootstrap_servers:
            return
        with self._admins_lock:
            self._admins.pop(bootstrap, None)

    def close(self) -> None:
        self.redis.close()

    @contextlib.contextmanager
    def database(self) -> Iterator[psycopg.Connection[Any]]:
        with psycopg.connect(self.config.database_url.get_secret_value(), connect_timeout=5) as conn:
            yield conn

    def migrate(self) -> None:
        with self.database() as conn:
            db.migrate(conn)

    # -- the gate --------------------------------------------------------------------------------

    def read_gate(self, sale_id: str) -> Gate:
        keys = SaleKeys(sale_id)
        stock, flag = self.redis.mget([keys.stock, keys.open])
        return Gate(
            built=stock is not None, remaining=None if stock is None else int(stock), open=flag == b"1"
        )

    def set_open(self, sale_id: str, is_open: bool) -> gate.Flip:
        return gate.set_open(self.redis, SaleKeys(sale_id), is_open)

    def flips(self, sale_id: str) -> list[tuple[bool, int]]:
        return gate.flips(self.redis, SaleKeys(sale_id))

    def reserved(self, sale_id: str) -> int:
        """Reservations the gate accepted that are not orders yet."""
        return int(self.redis.hlen(SaleKeys(sale_id).pending))

    def build_gate(self, sale: SaleSpec, topic: str, bootstrap: str, *, open_after: bool) -> Built:
        """The first build, or the rebuild after Redis lost the gate (waits for the topic to drain)."""
        lag = GroupLag(bootstrap, topic, consumer_group(sale.sale_id))
        try:
            with self.database() as conn:
                return prewarm_sale(self.redis, conn, lag, sale, open_after=open_after)
        finally:
            lag.close()

    def retire(self, sale_id: str) -> None:
        """The sale's record is kept (business records) but marked retired; its Redis keys go."""
        with self.database() as conn:
            retire_sale(self.redis, conn, sale_id)

    def drop_keys(self, sale_id: str) -> None:
        """The sale's Redis keys only (the escape hatch's teardown when the record cannot be reached)."""
        gate.drop(self.redis, SaleKeys(sale_id))

    def database_problem(self) -> str | None:
        """None when the record answers a query, else why not (said while a drain waits)."""
        try:
            with self.database() as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as error:
            return f"PostgreSQL does not answer the operator: {str(error).strip().splitlines()[0]}"
        return None

    # -- the record ------------------------------------------------------------------------------

    def orders_by_state(self, sale_id: str) -> dict[str, int]:
        """Units per order state ('ordered', 'paid', 'expired') in the record."""
        with self.database() as conn:
            rows = conn.execute(db.ORDERS_BY_STATE, {"sale": sale_id}).fetchall()
        return {str(state): int(units) for state, _, units in rows}

    # -- the queue -------------------------------------------------------------------------------

    def broker_waiting(self, bootstrap: str) -> str | None:
        """None once a broker of `bootstrap` answers a metadata request, else what it is waiting for.

        A plain TCP connection first: no Kafka client is made (nor logs its retries) for a broker
        whose name does not resolve yet or whose port is still closed.
        """
        host, _, port = bootstrap.split(",", maxsplit=1)[0].rpartition("://")[2].rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=BROKER_PROBE_SECONDS):
                pass
        except OSError as error:
            return f"{host}:{port} does not answer yet ({error.strerror or error})"
        try:
            metadata = self._admin(bootstrap).list_topics(timeout=BROKER_PROBE_SECONDS)
        except KafkaException as error:
            return f"{host}:{port} accepts connections but no metadata yet ({error})"
        return None if metadata.brokers else f"{host}:{port} names no broker yet"

    def ensure_topic(self, topic: str, partitions: int, bootstrap: str) -> None:
        """Creates the sale's topic, or grows it to `partitions` (Kafka never shrinks one)."""
        admin = self._admin(bootstrap)
        metadata = admin.list_topics(topic=topic, timeout=KAFKA_TIMEOUT_SECONDS)
        existing = metadata.topics.get(topic)
        if existing is not None and existing.error is None:
            if len(existing.partitions) < partitions:
                futures = admin.create_partitions([NewPartitions(topic, partitions)])
                futures[topic].result(KAFKA_TIMEOUT_SECONDS)
            return
        # A dedicated broker is one node: replication 1 whatever the platform's Kafka uses.
        factor = (
            self.config.kafka_replication_factor if bootstrap == self.config.kafka_bootstrap_servers else 1
        )
        new = NewTopic(topic, partitions, factor)
        try:
            admin.create_topics([new], operation_timeout=KAFKA_TIMEOUT_SECONDS)[topic].result(
                KAFKA_TIMEOUT_SECONDS
            )
        except KafkaException as error:
            if "TOPIC_ALREADY_EXISTS" not in str(error):
                raise

    def delete_topic(self, topic: str, bootstrap: str) -> None:
        admin = self._admin(bootstrap)
        metadata = admin.list_topics(timeout=KAFKA_TIMEOUT_SECONDS)
        if topic not in metadata.topics:
            return
        admin.delete_topics([topic], operation_timeout=KAFKA_TIMEOUT_SECONDS)[topic].result(
            KAFKA_TIMEOUT_SECONDS
        )

    def lag_reader(self, topic: str, sale_id: str, bootstrap: str) -> GroupLag:
        """A reader to keep (its clients keep their connections): the scaling loop asks every second."""
        return GroupLag(bootstrap, topic, consumer_group(sale_id))

    def lag(self, topic: str, sale_id: str, bootstrap: str) -> TopicLag:
        """The group's lag as the broker knows it (LagUnknown when it does not answer)."""
        reader = GroupLag(bootstrap, topic, consumer_group(sale_id))
        try:
            return reader.read()
        finally:
            reader.close()
