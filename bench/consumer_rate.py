"""Consumer orders per second: N reservations waiting in a fresh topic, one `flashsale consumer`.

The reservations are made as the gateway makes them (the contract's reserve script, so Redis holds
their pending records) and published with the gateway's message schema, RECORDS_PER_MESSAGE
reservations per message (what a gateway's tick holds under the buy benchmark's crowd: about 64
buyers per gate call, its metrics say); then one consumer process starts and the clock runs from
its start until all N orders are rows in PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Producer

from bench import profiling
from bench.sale import TOPIC_PARTITIONS, new_sale_id, sale_environment
from bench.servers import VENV_BIN
from flashsale_dev.platform import LocalPlatform
from flashsale_dev.process import ManagedProcess
from flashsale_sale import gate
from flashsale_sale.contract import (
    RESERVE_LUA,
    ReservationMessage,
    SaleKeys,
    buyer_arg,
    join_records,
    topic_name,
)

_RESERVE_BATCH = 1024
RECORDS_PER_MESSAGE = 64


@dataclass(frozen=True)
class ConsumerRun:
    orders: int
    seconds: float  # process start -> all N orders in the database
    steady_per_s: float  # first to last order's commit, from the rows' own timestamps
    checks: dict[str, int]

    @property
    def per_s(self) -> float:
        return self.orders / self.seconds if self.seconds > 0 else 0.0


class ConsumerBench:
    def __init__(self, platform: LocalPlatform, orders: int, log_dir: Path) -> None:
        self.platform = platform
        self.orders = orders
        self.log_dir = log_dir
        self.sale_id = ""
        self.process: ManagedProcess | None = None

    def prepare(self) -> None:
        """A fresh sale: gate with N units all reserved, and N messages waiting in its own topic."""
        self.sale_id = new_sale_id("orders")
        keys = SaleKeys(self.sale_id)
        topic = topic_name(self.sale_id)
        self.platform.kafka.create_topic(topic, partitions=TOPIC_PARTITIONS)
        producer = Producer(
            {
                "bootstrap.servers": self.platform.kafka.bootstrap_servers,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 20,
                "compression.type": "lz4",
            }
        )
        with self.platform.redis.client() as client:
            gate.prewarm(client, keys, self.orders)
            gate.set_open(client, keys, True)
            now_ms = int(time.time() * 1000)
            for start in range(0, self.orders, _RESERVE_BATCH):
                batch = [
                    (f"u{i}", uuid.uuid4().hex)
                    for i in range(start, min(start + _RESERVE_BATCH, self.orders))
                ]
                args: list[Any] = []
                for user, reservation in batch:
                    args.append(buyer_arg(user, 1, reservation))
                client.eval(RESERVE_LUA, 5, *keys.reserve_keys(), *args)
                records = [
                    ReservationMessage(self.sale_id, reservation, user, 1, now_ms).encode()
                    for user, reservation in batch
                ]
                for first in range(0, len(records), RECORDS_PER_MESSAGE):
                    producer.produce(topic, join_records(records[first : first + RECORDS_PER_MESSAGE]))
                producer.poll(0)
        if producer.flush(120) != 0:
            raise RuntimeError("the pre-produced reservations were not all acknowledged")

    def run(self, timeout: float) -> ConsumerRun:
        """Starts the consumer, waits for all N orders, stops it; prepare() first."""
        self.process = self._spawn()
        with self.platform.postgres.connect(autocommit=True) as watcher:  # one connection for the polls
            started = time.monotonic()
            self.process.start()
            try:
                self.process.wait_until(
                    lambda: self._orders(watcher) >= self.orders, timeout, f"{self.orders} orders"
                )
                seconds = time.monotonic() - started
            finally:
                self.process.stop(timeout=20.0)
        return ConsumerRun(self.orders, seconds, self._steady_rate(), self._check())

    @contextlib.contextmanager
    def started(self) -> Iterator[int]:
        """For profiling: the consumer's pid while it works through the topic (prepare() first)."""
        self.process = self._spawn()
        self.process.start()
        try:
            assert self.process.pid is not None
            yield self.process.pid
        finally:
            self.process.stop(timeout=20.0)

    def profile(self, seconds: float, profiles_dir: Path) -> str:
        """One more run under py-spy; the summary's file name, or why there is none."""
        if profiling.available() is None:
            return "not taken: py-spy is not installed"
        profiles_dir.mkdir(parents=True, exist_ok=True)
        raw = profiles_dir / "consumer_orders_per_s.raw"
        self.prepare()
        with self.started() as pid, profiling.sampling(pid, seconds, raw):
            pass
        if not raw.exists():
            return "failed: py-spy wrote nothing"
        report = profiles_dir / "consumer_orders_per_s.txt"
        title = f"consumer_orders_per_s: one `flashsale consumer`, {self.orders:,} orders waiting"
        report.write_text(profiling.summarise(raw, title))
        raw.unlink(missing_ok=True)
        raw.with_suffix(".log").unlink(missing_ok=True)
        return report.name

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=10.0)

    def _spawn(self) -> ManagedProcess:
        env = {
            **os.environ,
            **sale_environment(self.platform, self.sale_id, self.orders),
            "FLASHSALE_METRICS_PORT": str(self.platform.reserve_port()),
        }
        argv = [str(VENV_BIN / "flashsale"), "consumer"]
        return ManagedProcess("consumer", argv, self.log_dir / f"{self.sale_id}.log", env=env)

    def _orders(self, conn: psycopg.Connection[tuple[object, ...]]) -> int:
        row = conn.execute("SELECT count(*) FROM orders WHERE sale_id = %s", (self.sale_id,)).fetchone()
        return int(str(row[0])) if row else 0

    def _steady_rate(self) -> float:
        with self.platform.postgres.connect() as conn:
            row = conn.execute(
                "SELECT count(*), extract(epoch FROM max(created_at) - min(created_at)) FROM orders"
                " WHERE sale_id = %s",
                (self.sale_id,),
            ).fetchone()
        if not row or not row[1]:
            return 0.0
        return float(str(row[0])) / float(str(row[1]))

    def _check(self) -> dict[str, int]:
        """Every reservation is one order, the ledger never below zero, pending emptied."""
        with self.platform.postgres.connect() as conn:
            orders_row = conn.execute(
                "SELECT count(*), coalesce(sum(quantity), 0) FROM orders WHERE sale_id = %s", (self.sale_id,)
            ).fetchone()
            ledger_row = conn.execute(
                "SELECT remaining FROM stock_ledger WHERE sale_id = %s", (self.sale_id,)
            ).fetchone()
        with self.platform.redis.client() as client:
            pending = int(client.hlen(SaleKeys(self.sale_id).pending))
        orders = int(str(orders_row[0])) if orders_row else 0
        units = int(str(orders_row[1])) if orders_row else 0
        ledger = int(str(ledger_row[0])) if ledger_row else -1
        return {
            "initial": self.orders,
            "orders": orders,
            "ledger_remaining": ledger,
            "pending_left": pending,
            "oversold_units": max(0, units - self.orders),
        }
