"""One sale's data plane on the local platform, as real processes: gateways and consumers.

What the operator will render as Deployments, run here by hand for the data-plane tests, the demo
and the benchmarks: the same console scripts (`flashsale gateway`, `flashsale consumer`) with the
same FLASHSALE_* environment, against the platform's real Redis, Kafka and PostgreSQL.
"""

from __future__ import annotations

import os
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import redis

from flashsale_dev.process import ManagedProcess
from flashsale_sale import gate, tokens
from flashsale_sale.contract import SaleKeys
from flashsale_sale.db import migrate

FLASHSALE = str(Path(sys.executable).with_name("flashsale"))
USER_TOKEN_KEY = "local-user-token-key-0123456789"


@dataclass
class LocalSale:
    """A sale's settings and the processes that serve it; `stop()` stops them all."""

    redis_url: str
    kafka_bootstrap_servers: str
    topic: str
    database_url: str
    logs: Path
    stock: int = 1000
    per_user_limit: int = 1
    sale_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    sale_name: str = "local-sale"
    starts_in: timedelta = timedelta(hours=1)
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: list[ManagedProcess] = field(default_factory=list)

    @property
    def keys(self) -> SaleKeys:
        return SaleKeys(self.sale_id)

    def env(self, **overrides: str) -> dict[str, str]:
        starts = datetime.now(UTC) + self.starts_in
        settings = {
            "FLASHSALE_SALE_NAME": self.sale_name,
            "FLASHSALE_SALE_ID": self.sale_id,
            "FLASHSALE_STOCK": str(self.stock),
            "FLASHSALE_PER_USER_LIMIT": str(self.per_user_limit),
            "FLASHSALE_STARTS_AT": starts.isoformat(),
            "FLASHSALE_ENDS_AT": (starts + timedelta(hours=2)).isoformat(),
            "FLASHSALE_REDIS_URL": self.redis_url,
            "FLASHSALE_KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "FLASHSALE_KAFKA_TOPIC": self.topic,
            "FLASHSALE_DATABASE_URL": self.database_url,
            "FLASHSALE_PRODUCT_SKU": "SKU-1",
            "FLASHSALE_PRODUCT_NAME": "Limited edition",
            "FLASHSALE_PRODUCT_PRICE": "999.00",
            "FLASHSALE_PRODUCT_CURRENCY": "USD",
            "FLASHSALE_USER_TOKEN_KEY": USER_TOKEN_KEY,
            "FLASHSALE_ORDER_PATH_KEY": f"order-path-key-{self.sale_id}",
        }
        return {**os.environ, **settings, **self.extra_env, **overrides}

    # ---- the control side (what the operator does) ----

    def prepare(self) -> None:
        """The schema and the gate, as the operator's prewarm would leave them."""
        with psycopg.connect(self.database_url, connect_timeout=10) as conn:
            migrate(conn)
        with self.redis() as client:
            gate.prewarm(client, self.keys, self.stock)

    def set_open(self, is_open: bool) -> None:
        with self.redis() as client:
            gate.set_open(client, self.keys, is_open)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url)

    def token(self, user: str) -> str:
        return tokens.mint(USER_TOKEN_KEY.encode(), user)

    # ---- the processes ----

    def start_gateway(self, port: int, **env: str) -> Gateway:
        name = f"gateway-{len(self.processes)}"
        process = ManagedProcess(
            name,
            [FLASHSALE, "gateway"],
            self.logs / f"{name}.log",
            env=self.env(FLASHSALE_PORT=str(port), **env),
        )
        self.processes.append(process)
        process.start()
        started = Gateway(process, f"http://127.0.0.1:{port}")
        process.wait_until(started.is_ready, timeout=120, what="gateway ready (/readyz)")
        return started

    def start_consumer(self, metrics_port: int, **env: str) -> ManagedProcess:
        name = f"consumer-{len(self.processes)}"
        process = ManagedProcess(
            name,
            [FLASHSALE, "consumer"],
            self.logs / f"{name}.log",
            env=self.env(FLASHSALE_METRICS_PORT=str(metrics_port), **env),
        )
        self.processes.append(process)
        process.start()
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    # ---- what the record says ----

    def orders(self) -> list[tuple[str, str, int]]:
        """(reservation id, user, quantity) of every order of this sale in PostgreSQL."""
        with psycopg.connect(self.database_url, connect_timeout=10) as conn:
            rows = conn.execute(
                "SELECT reservation_id, user_id, quantity FROM orders WHERE sale_id = %s", (self.sale_id,)
            ).fetchall()
        return [(str(r), str(u), int(q)) for r, u, q in rows]

    def ledger_remaining(self) -> int | None:
        with psycopg.connect(self.database_url, connect_timeout=10) as conn:
            row = conn.execute(
                "SELECT remaining FROM stock_ledger WHERE sale_id = %s", (self.sale_id,)
            ).fetchone()
        return None if row is None else int(row[0])


@dataclass
class Gateway:
    process: ManagedProcess
    url: str

    def is_ready(self) -> bool:
        return httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200

    def status(self) -> dict[str, object]:
        answer: dict[str, object] = httpx.get(f"{self.url}/api/status", timeout=10).json()
        return answer
