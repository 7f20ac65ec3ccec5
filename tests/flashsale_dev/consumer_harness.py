"""Runs `flashsale consumer` as a real process against the test's Redis, Kafka topic and schema.

Shared by the consumer's integration tests: the environment a Deployment would get, a reserved
metrics port, reading its metrics, producing reservations (acks=all), and the database's view.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from flashsale_dev.platform import LocalPlatform
from flashsale_dev.ports import PortReservations
from flashsale_dev.pytest_plugin import PostgresSchema, RedisDatabase
from flashsale_sale import db
from flashsale_sale.contract import ReservationMessage

FLASHSALE = str(Path(sys.executable).parent / "flashsale")


@dataclass
class Sale:
    """One test sale: its settings as environment, and handles on the middleware it uses."""

    platform: LocalPlatform
    redis_db: RedisDatabase
    topic: str
    schema: PostgresSchema
    workdir: Path
    stock: int = 100
    per_user_limit: int = 1
    sale_id: str = field(default_factory=lambda: f"s-{uuid.uuid4().hex[:12]}")
    ports: PortReservations = field(default_factory=PortReservations)

    def environment(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLASHSALE_")}
        env.update(
            {
                "FLASHSALE_SALE_NAME": "test-sale",
                "FLASHSALE_SALE_ID": self.sale_id,
                "FLASHSALE_STOCK": str(self.stock),
                "FLASHSALE_PER_USER_LIMIT": str(self.per_user_limit),
                "FLASHSALE_STARTS_AT": "2026-01-01T00:00:00Z",
                "FLASHSALE_ENDS_AT": "2036-01-01T00:00:00Z",
                "FLASHSALE_PAYMENT_TIMEOUT_SECONDS": "600",
                "FLASHSALE_REDIS_URL": self.redis_db.url,
                "FLASHSALE_KAFKA_BOOTSTRAP_SERVERS": self.platform.kafka.bootstrap_servers,
                "FLASHSALE_KAFKA_TOPIC": self.topic,
                "FLASHSALE_DATABASE_URL": self.schema.url,
                "FLASHSALE_BATCH_SIZE": "200",
                "FLASHSALE_BATCH_TIMEOUT_SECONDS": "0.1",
            }
        )
        env.update(overrides)
        return env

    @property
    def group(self) -> str:
        return f"flashsale.{self.sale_id}.orders"

    def migrate(self) -> None:
        with self.schema.connect() as conn:
            db.migrate(conn)

    def produce(self, messages: Iterable[ReservationMessage | bytes]) -> int:
        producer = Producer(
            {"bootstrap.servers": self.platform.kafka.bootstrap_servers, "acks": "all", "linger.ms": 5}
        )
        count = 0
        for message in messages:
            if isinstance(message, bytes):
                producer.produce(self.topic, message, key=uuid.uuid4().hex.encode())
            else:
                producer.produce(self.topic, message.encode(), key=message.reservation_id.encode())
            count += 1
        assert producer.flush(60) == 0
        return count

    def reservation(self, index: int, quantity: int = 1, user: str | None = None) -> ReservationMessage:
        return ReservationMessage(
            self.sale_id, f"r-{index}", user or f"user-{index}", quantity, 1_790_000_000_000
        )

    def orders(self) -> list[tuple[str, str, int]]:
        with self.schema.connect() as conn:
            rows = conn.execute("SELECT reservation_id, user_id, quantity FROM orders ORDER BY 1").fetchall()
        return [(str(r), str(u), int(str(q))) for r, u, q in rows]

    def order_count(self) -> int:
        with self.schema.connect() as conn:
            row = conn.execute("SELECT count(*) FROM orders").fetchone()
        return int(str(row[0])) if row else 0

    def ledger(self) -> int:
        with self.schema.connect() as conn:
            row = conn.execute(
                "SELECT remaining FROM stock_ledger WHERE sale_id = %s", (self.sale_id,)
            ).fetchone()
        assert row is not None
        return int(str(row[0]))

    def committed(self) -> int:
        """The group's committed offsets, summed over the topic's partitions (nothing committed = 0)."""
        admin = self.platform.kafka.admin()  # must outlive the future
        future = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(self.group, [TopicPartition(self.topic, p) for p in range(3)])]
        )
        partitions = future[self.group].result(30).topic_partitions
        return sum(tp.offset for tp in partitions if tp.offset >= 0)

    def rewind_group(self) -> bool:
        """Sets the group's offsets back to 0: what a crash after the DB commit, before the offset commit,
        leaves behind. Refused while the group still has a member; the caller retries."""
        admin = self.platform.kafka.admin()
        future = admin.alter_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(self.group, [TopicPartition(self.topic, p, 0) for p in range(3)])]
        )
        result = future[self.group].result(30)
        errors = [tp.error for tp in result.topic_partitions if tp.error is not None]
        if errors:
            raise RuntimeError(f"rewind refused: {errors}")
        return True

    def start(self, name: str = "consumer", **env: str) -> ConsumerProcess:
        port = self.ports.take()
        environment = self.environment(FLASHSALE_METRICS_PORT=str(port), **env)
        log = self.workdir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [FLASHSALE, "consumer"], env=environment, stdout=out, stderr=subprocess.STDOUT
            )
        return ConsumerProcess(process, port, log)


@dataclass
class ConsumerProcess:
    process: subprocess.Popen[bytes]
    metrics_port: int
    log: Path

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples called `name` whose labels include `labels`."""
        return sum(value for _, value in self.samples(name, **labels))

    def samples(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        """The samples called `name` whose labels include `labels`, from a fresh scrape."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        return [
            (sample.labels, sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        ]

    def healthz(self) -> int:
        url = f"http://127.0.0.1:{self.metrics_port}/healthz"
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, signum: signal.Signals) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def wait(self, timeout: float = 120) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        """Test clean-up: SIGTERM, then SIGKILL if it does not go."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
