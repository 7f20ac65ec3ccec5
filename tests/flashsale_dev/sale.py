"""One sale's data plane on the local platform, as real processes: gateways and consumers.

What the operator will render as Deployments, run here by hand for the data-plane tests, the demo
and the benchmarks: the same console scripts (`flashsale gateway`, `flashsale consumer`) with the
same FLASHSALE_* environment (services/flashsale_sale/settings.py), against the platform's real
Redis, Kafka and PostgreSQL. Besides the processes, a `LocalSale` does what the operator does (the
schema, the prewarmed gate, the start flag), what a shopper needs (tokens), what a gateway would
publish (reservations on the topic), and reads the record: orders, the ledger, the gate, the group.
"""

from __future__ import annotations

import os
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client.parser import text_string_to_metric_families

from flashsale_dev.process import ManagedProcess
from flashsale_dev.waiting import wait_for
from flashsale_sale import gate, tokens
from flashsale_sale.contract import ReservationMessage, SaleKeys, consumer_group, order_path
from flashsale_sale.db import migrate
from flashsale_sale.lag import GroupLag

FLASHSALE = Path(sys.executable).with_name("flashsale")
USER_TOKEN_KEY = "local-user-token-key-0123456789"  # the platform's: the shop's login service holds it
PAYMENT_KEY = "local-payment-key-0123456789"  # the platform's: the shop's payment service holds it
# What a sale run by hand stands for: the FlashSale `LOCAL_NAMESPACE/<sale_name>`, whose keys it derives.
LOCAL_NAMESPACE = "local"
# When `reservation()` says a test's reservations were made: far in the future (2100), so their
# orders never pass their payment deadline (the consumers' settlement loop would expire them) and
# their pending records never look lost. Settlement tests choose their own times.
RESERVED_AT_MS = 4_102_444_800_000


def inherited_environment() -> dict[str, str]:
    """This process's environment without anything a sale's settings could be read from."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FLASHSALE_") and k != "DATABASE_URL"}


@dataclass
class LocalSale:
    """A sale's settings and the processes that serve it; `stop()` stops them all.

    Settings may be changed until the processes that read them start: each process gets `env()`.
    """

    redis_url: str
    kafka_bootstrap_servers: str
    topic: str
    database_url: str
    logs: Path
    stock: int = 1000
    per_user_limit: int = 1
    sale_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    sale_name: str = "local-sale"
    starts_at: datetime = field(default_factory=lambda: datetime.now(UTC) + timedelta(hours=1))
    ends_at: datetime = field(default_factory=lambda: datetime.now(UTC) + timedelta(hours=3))
    product_sku: str = "SKU-1"
    product_name: str = "Limited edition"
    product_description: str = ""
    product_price: str = "999.00"
    product_currency: str = "USD"
    user_token_key: str = USER_TOKEN_KEY  # the platform's; the processes get the sale's derived keys
    payment_key: str = PAYMENT_KEY  # the platform's
    namespace: str = LOCAL_NAMESPACE
    order_path_key: str = field(default_factory=lambda: f"order-path-key-{uuid.uuid4().hex}")
    batch_size: int = 200  # the consumer's: small batches, short waits, for a test's few messages
    batch_timeout_seconds: float = 0.1
    reserve_port: Callable[[], int] | None = None  # where the processes' ports come from if not given
    processes: list[SaleProcess] = field(default_factory=list)

    @property
    def keys(self) -> SaleKeys:
        return SaleKeys(self.sale_id)

    @property
    def order_path(self) -> str:
        """The secret path that takes orders (what /api/status reveals while the sale is live)."""
        return order_path(self.order_path_key.encode(), self.sale_id)

    @property
    def reference(self) -> str:
        """`namespace/name`: what the sale's keys are derived from, as for a FlashSale."""
        return f"{self.namespace}/{self.sale_name}"

    @property
    def sale_token_key(self) -> str:
        """The sale's user-token key (what the operator puts in the sale's Secret)."""
        return tokens.sale_token_key(self.user_token_key.encode(), self.reference)

    @property
    def sale_payment_key(self) -> str:
        return tokens.sale_payment_key(self.payment_key.encode(), self.reference)

    @property
    def group(self) -> str:
        """The consumers' group."""
        return consumer_group(self.sale_id)

    def env(self, **overrides: str) -> dict[str, str]:
        """The environment of every process of this sale, as the operator renders it."""
        settings = {
            "FLASHSALE_SALE_NAME": self.sale_name,
            "FLASHSALE_SALE_ID": self.sale_id,
            "FLASHSALE_STOCK": str(self.stock),
            "FLASHSALE_PER_USER_LIMIT": str(self.per_user_limit),
            "FLASHSALE_STARTS_AT": self.starts_at.isoformat(),
            "FLASHSALE_ENDS_AT": self.ends_at.isoformat(),
            "FLASHSALE_REDIS_URL": self.redis_url,
            "FLASHSALE_KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "FLASHSALE_KAFKA_TOPIC": self.topic,
            "FLASHSALE_DATABASE_URL": self.database_url,
            "FLASHSALE_PRODUCT_SKU": self.product_sku,
            "FLASHSALE_PRODUCT_NAME": self.product_name,
            "FLASHSALE_PRODUCT_DESCRIPTION": self.product_description,
            "FLASHSALE_PRODUCT_PRICE": self.product_price,
            "FLASHSALE_PRODUCT_CURRENCY": self.product_currency,
            "FLASHSALE_SALE_TOKEN_KEY": self.sale_token_key,
            "FLASHSALE_SALE_PAYMENT_KEY": self.sale_payment_key,
            "FLASHSALE_ORDER_PATH_KEY": self.order_path_key,
            "FLASHSALE_BATCH_SIZE": str(self.batch_size),
            "FLASHSALE_BATCH_TIMEOUT_SECONDS": str(self.batch_timeout_seconds),
        }
        return {**inherited_environment(), **settings, **overrides}

    # ---- the control side (what the operator does) ----

    def prepare(self) -> bool:
        """The schema and the gate, as the operator's prewarm would leave them; True if the gate is new."""
        self.migrate()
        with self.redis() as client:
            return gate.prewarm(client, self.keys, self.stock)

    def migrate(self) -> None:
        with self.database() as conn:
            migrate(conn)

    def set_open(self, is_open: bool) -> None:
        """Flips the start flag, the authority the gateways follow."""
        with self.redis() as client:
            gate.set_open(client, self.keys, is_open)

    def go_live(self, gateways: int = 1) -> list[Gateway]:
        """A sale in progress: prepared, the flag on, and `gateways` gateways started that say live."""
        self.prepare()
        self.set_open(True)
        started = [self.start_gateway() for _ in range(gateways)]
        for gateway in started:
            gateway.wait_for_state("live")
        return started

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url)

    def database(self, **kwargs: Any) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(self.database_url, connect_timeout=10, **kwargs)

    # ---- the shoppers' side ----

    def token(self, user: str, ttl_seconds: int = tokens.DEFAULT_TTL_SECONDS) -> str:
        """A token for `user` as the shop's login mints it (the sale's key, derived from the platform's)."""
        return tokens.mint(self.sale_token_key.encode(), user, ttl_seconds)

    def bearer(self, user: str) -> dict[str, str]:
        """The Authorization header of a fresh token for `user`."""
        return {"Authorization": f"Bearer {self.token(user)}"}

    def payment_credential(self) -> str:
        """What the shop's payment service presents to pay this sale's orders."""
        return tokens.mint_payment(self.sale_payment_key.encode(), self.reference)

    def payer(self) -> dict[str, str]:
        """The Authorization header of the shop's payment service for this sale (the pay route)."""
        return {"Authorization": f"Bearer {self.payment_credential()}"}

    # ---- what a gateway would publish ----

    def reservation(self, index: int, quantity: int = 1, user: str | None = None) -> ReservationMessage:
        """Reservation `r-<index>` of this sale, by `user-<index>` unless another user is named."""
        return ReservationMessage(
            self.sale_id, f"r-{index}", user or f"user-{index}", quantity, RESERVED_AT_MS
        )

    def produce(self, messages: Iterable[ReservationMessage | bytes]) -> int:
        """Publishes to the sale's topic as the gateway does (acks=all); raw bytes too. Returns the count."""
        producer = Producer(
            {"bootstrap.servers": self.kafka_bootstrap_servers, "acks": "all", "linger.ms": 5}
        )
        count = 0
        for message in messages:
            if isinstance(message, bytes):
                producer.produce(self.topic, message, key=uuid.uuid4().hex.encode())
            else:
                producer.produce(self.topic, message.encode(), key=message.reservation_id.encode())
            count += 1
        assert producer.flush(60) == 0, "a message was not acknowledged by Kafka"
        return count

    # ---- the processes ----

    def start_gateway(self, port: int | None = None, **env: str) -> Gateway:
        """A `flashsale gateway` process, returned once /readyz says ready (Redis, Kafka, the flag read)."""
        port = self._port(port)
        admin_port = self._port(None)  # health, readiness, metrics, OpenAPI: never the public port
        name = f"gateway-{len(self.processes)}"
        env = {"FLASHSALE_PORT": str(port), "FLASHSALE_ADMIN_PORT": str(admin_port), **env}
        gateway = Gateway(name, port, admin_port, self.logs / f"{name}.log", self.env(**env))
        self.processes.append(gateway)
        gateway.start()
        gateway.wait_until(gateway.is_ready, timeout=120, what="gateway ready (/readyz)")
        return gateway

    def start_consumer(self, metrics_port: int | None = None, **env: str) -> Consumer:
        """A `flashsale consumer` process, returned as soon as it runs."""
        port = self._port(metrics_port)
        name = f"consumer-{len(self.processes)}"
        consumer = Consumer(
            name, port, self.logs / f"{name}.log", self.env(FLASHSALE_METRICS_PORT=str(port), **env)
        )
        self.processes.append(consumer)
        consumer.start()
        return consumer

    def crashed(self) -> list[str]:
        """The processes that exited although nobody ended them nor waited for their exit."""
        return [process.name for process in self.processes if process.crashed]

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def _port(self, port: int | None) -> int:
        if port is not None:
            return port
        if self.reserve_port is None:
            raise ValueError("pass a port, or give the sale a reserve_port")
        return self.reserve_port()

    # ---- what the record says ----

    def orders(self, *, any_sale: bool = False) -> list[tuple[str, str, int]]:
        """(reservation id, user, quantity) of every order of this sale (or of any) in PostgreSQL, sorted."""
        query = "SELECT reservation_id, user_id, quantity FROM orders WHERE %s OR sale_id = %s ORDER BY 1"
        with self.database() as conn:
            rows = conn.execute(query, (any_sale, self.sale_id)).fetchall()
        return [(str(r), str(u), int(q)) for r, u, q in rows]

    def order_count(self) -> int:
        with self.database() as conn:
            row = conn.execute("SELECT count(*) FROM orders WHERE sale_id = %s", (self.sale_id,)).fetchone()
        return 0 if row is None else int(row[0])

    def ledger_remaining(self) -> int | None:
        """The units PostgreSQL's stock ledger has left, or None before the first order."""
        with self.database() as conn:
            row = conn.execute(
                "SELECT remaining FROM stock_ledger WHERE sale_id = %s", (self.sale_id,)
            ).fetchone()
        return None if row is None else int(row[0])

    def gate_remaining(self) -> int | None:
        """The units the Redis gate has left, or None when there is no gate."""
        with self.redis() as client:
            return gate.remaining(client, self.keys)

    def pending(self) -> int:
        """Reservations the gate holds that no consumer has turned into an order yet."""
        with self.redis() as client:
            return int(client.hlen(self.keys.pending))

    def buyers(self) -> int:
        """Users the gate remembers as having a reservation."""
        with self.redis() as client:
            return int(client.hlen(self.keys.buyers))

    def committed(self) -> int:
        """The group's committed offsets, summed over the topic's partitions (nothing committed = 0).

        Read through flashsale_sale.lag's never-subscribing Consumer, not the AdminClient call that
        crashes the process when the broker answers NOT_COORDINATOR (see that module).
        """
        lag = GroupLag(self.kafka_bootstrap_servers, self.topic, self.group)
        try:
            partitions = self._partitions(self._admin())
            offsets = lag.committed_offsets(partitions, timeout=30)
        finally:
            lag.close()
        return sum(offset for offset in offsets.values() if offset >= 0)

    def rewind_group(self) -> bool:
        """Sets the group's offsets back to 0: what a crash after the DB commit, before the offset commit,
        leaves behind. Refused while the group still has a member; the caller retries."""
        admin = self._admin()
        partitions = [TopicPartition(self.topic, p, 0) for p in self._partitions(admin)]
        future = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(self.group, partitions)])
        errors = [tp.error for tp in future[self.group].result(30).topic_partitions if tp.error is not None]
        if errors:
            raise RuntimeError(f"rewind refused: {errors}")
        return True

    def _admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.kafka_bootstrap_servers})

    def _partitions(self, admin: AdminClient) -> list[int]:
        return sorted(admin.list_topics(self.topic, timeout=30).topics[self.topic].partitions)


class SaleProcess(ManagedProcess):
    """A gateway or a consumer; it knows whether the test ended it (or awaited its end) on purpose."""

    def __init__(self, name: str, command: str, log_path: Path, env: Mapping[str, str]) -> None:
        super().__init__(name, [str(FLASHSALE), command], log_path, env=env)
        self.ended_on_purpose = False

    @property
    def crashed(self) -> bool:
        return self.pid is not None and not self.alive and not self.ended_on_purpose

    def terminate(self) -> None:
        self.ended_on_purpose = True
        super().terminate()

    def kill(self) -> None:
        self.ended_on_purpose = True
        super().kill()

    def stop(self, timeout: float = 30.0) -> None:
        self.ended_on_purpose = True
        super().stop(timeout)

    def exit_code(self, timeout: float = 120.0) -> int:
        """Waits for the process to exit (as the test expects it to) and returns its exit code."""
        self.ended_on_purpose = True
        wait_for(
            lambda: self.returncode is not None,
            timeout=timeout,
            what=f"{self.name} to exit",
            describe=self.output,
        )
        assert self.returncode is not None
        return self.returncode

    def output(self) -> str:
        """Everything it logged."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Gateway(SaleProcess):
    """`flashsale gateway` on a loopback port: `url` (public), `admin_url`, its status, a client for it."""

    def __init__(self, name: str, port: int, admin_port: int, log_path: Path, env: Mapping[str, str]) -> None:
        super().__init__(name, "gateway", log_path, env)
        self.url = f"http://127.0.0.1:{port}"
        self.admin_url = f"http://127.0.0.1:{admin_port}"  # /healthz, /readyz, /metrics, /openapi.json

    def is_ready(self) -> bool:
        return httpx.get(f"{self.admin_url}/readyz", timeout=5).status_code == 200

    def metrics(self) -> str:
        """Its Prometheus text, from the admin port."""
        return httpx.get(f"{self.admin_url}/metrics", timeout=10).text

    def status(self) -> dict[str, Any]:
        """What /api/status says: the sale's state, and its order path while live."""
        answer: dict[str, Any] = httpx.get(f"{self.url}/api/status", timeout=10).json()
        return answer

    def wait_for_state(self, state: str, timeout: float = 60.0) -> dict[str, Any]:
        """The status, once it says `state` (the gateways follow the flag within moments)."""

        def in_state() -> dict[str, Any] | None:
            seen = self.status()
            return seen if seen["state"] == state else None

        return wait_for(in_state, timeout=timeout, what=f"{self.name} in state {state}")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)


class Consumer(SaleProcess):
    """`flashsale consumer`, with its metrics endpoint on `metrics_port`."""

    def __init__(self, name: str, metrics_port: int, log_path: Path, env: Mapping[str, str]) -> None:
        super().__init__(name, "consumer", log_path, env)
        self.metrics_port = metrics_port

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples called `name` whose labels include `labels`."""
        return sum(value for _, value in self.samples(name, **labels))

    def samples(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        """The samples called `name` whose labels include `labels`, from a fresh scrape."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as response:
            text = response.read().decode()
        return [
            (sample.labels, sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        ]

    def healthz(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/healthz", timeout=10) as response:
            return int(response.status)
