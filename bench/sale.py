"""One benchmark sale on the local platform: its settings, its gate, its topic, its gateway process.

Set up as the operator would: schema migrated, topic created, gate prewarmed, flag flipped open,
then `flashsale gateway` started with FLASHSALE_* settings. Admission rate and burst are set far
above what one process can take, so the gateway never sheds during a run: every request is
measured on the full buy path. Selling out happens through the contract's own reserve script, as
another replica would: the remaining stock goes to one buyer, the script announces "soldout", and
the gateway's local flag flips.
"""

from __future__ import annotations

import os
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

from bench.servers import VENV_BIN, Server
from flashsale_dev.platform import LocalPlatform
from flashsale_dev.process import ManagedProcess
from flashsale_dev.waiting import wait_for
from flashsale_sale import db, gate, tokens
from flashsale_sale.contract import RESERVE_LUA, SaleKeys, buyer_arg, topic_name

TOPIC_PARTITIONS: Final = 3
NO_SHEDDING: Final = 10_000_000  # admissions/s and burst: far beyond one process


def new_sale_id(kind: str) -> str:
    return f"bench-{kind}-{uuid.uuid4().hex[:12]}"


def sale_environment(platform: LocalPlatform, sale_id: str, stock: int) -> dict[str, str]:
    """The FLASHSALE_* settings every process of one sale shares (the operator renders the same)."""
    now = datetime.now(UTC)
    return {
        "FLASHSALE_SALE_NAME": sale_id,
        "FLASHSALE_SALE_ID": sale_id,
        "FLASHSALE_STOCK": str(stock),
        "FLASHSALE_PER_USER_LIMIT": "1",
        "FLASHSALE_STARTS_AT": (now - timedelta(hours=1)).isoformat(),
        "FLASHSALE_ENDS_AT": (now + timedelta(days=1)).isoformat(),
        "FLASHSALE_REDIS_URL": platform.redis.url(),
        "FLASHSALE_KAFKA_BOOTSTRAP_SERVERS": platform.kafka.bootstrap_servers,
        "FLASHSALE_DATABASE_URL": platform.postgres.url(),
    }


def migrate(platform: LocalPlatform) -> None:
    with platform.postgres.connect() as conn:
        db.migrate(conn)


class BenchSale:
    """A sale with a gateway in front of it."""

    def __init__(self, platform: LocalPlatform, stock: int, log_dir: Path) -> None:
        self.platform = platform
        self.sale_id = new_sale_id("buy")
        self.keys = SaleKeys(self.sale_id)
        self.stock = stock
        # The sale's keys, derived as the operator derives them (tokens.sale_token_key): a gateway
        # verifies with a derived key exactly as with any other 43-character key.
        sale = f"bench/{self.sale_id}"
        self.user_key = tokens.sale_token_key(secrets.token_bytes(32), sale).encode()
        self.port = platform.reserve_port()
        self.admin_port = platform.reserve_port()  # /metrics: never on the public port
        env = {
            **os.environ,
            **sale_environment(platform, self.sale_id, stock),
            "FLASHSALE_PRODUCT_SKU": "BENCH-1",
            "FLASHSALE_PRODUCT_NAME": "Benchmark unit",
            "FLASHSALE_PRODUCT_PRICE": "9.99",
            "FLASHSALE_PRODUCT_CURRENCY": "EUR",
            "FLASHSALE_SALE_TOKEN_KEY": self.user_key.decode(),
            "FLASHSALE_SALE_PAYMENT_KEY": tokens.sale_payment_key(secrets.token_bytes(32), sale),
            "FLASHSALE_ORDER_PATH_KEY": secrets.token_urlsafe(32),
            "FLASHSALE_ADMISSION_RATE": str(NO_SHEDDING),
            "FLASHSALE_ADMISSION_BURST": str(NO_SHEDDING),
            "FLASHSALE_BIND_HOST": "127.0.0.1",
            "FLASHSALE_PORT": str(self.port),
            "FLASHSALE_ADMIN_PORT": str(self.admin_port),
        }
        argv = [str(VENV_BIN / "flashsale"), "gateway"]
        process = ManagedProcess("gateway", argv, log_dir / "gateway.log", env=env)
        self.server = Server(name="gateway", port=self.port, process=process, probe_path="/api/status")
        self.server.probe_method = "GET"
        self.order_path = ""

    def open(self, timeout: float = 60.0) -> str:
        """Topic, gate, flag, gateway; returns the order path once the gateway says the sale is live."""
        self.platform.kafka.create_topic(topic_name(self.sale_id), partitions=TOPIC_PARTITIONS)
        with self._redis() as client:
            gate.prewarm(client, self.keys, self.stock)
            gate.set_open(client, self.keys, True)
        self.server.start(timeout)
        status = wait_for(self._live_status, timeout=timeout, what="the gateway to report the sale live")
        self.order_path = str(status["orderPath"])
        return self.order_path

    def sell_out(self, timeout: float = 30.0) -> int:
        """Reserves whatever stock is left for one buyer; returns the units it took."""
        with self._redis() as client:
            left = gate.remaining(client, self.keys) or 0
            if left > 0:
                client.eval(
                    RESERVE_LUA, 5, *self.keys.reserve_keys(), buyer_arg("bench-rest", left, "bench-rest")
                )
        wait_for(self._answers_sold_out, timeout=timeout, what="the gateway to answer 410 sold out")
        return left

    def check(self) -> dict[str, int]:
        """The gate's books: stock left + reserved units == initial, and nothing below zero."""
        with self._redis() as client:
            left = gate.remaining(client, self.keys)
            buyers = int(client.hlen(self.keys.buyers))
            reserved = 0
            for _, record in client.hscan_iter(self.keys.pending, count=10_000):
                reserved += int(record.split(b" ")[1])
        stock_left = -1 if left is None else left
        return {
            "initial": self.stock,
            "stock_left": stock_left,
            "reserved_units": reserved,
            "reservations": buyers,
            "oversold_units": max(0, reserved - self.stock) + max(0, -stock_left),
            "lost_units": self.stock - reserved - stock_left,
        }

    def orders_in_database(self) -> int:
        with self.platform.postgres.connect() as conn:
            row = conn.execute("SELECT count(*) FROM orders WHERE sale_id = %s", (self.sale_id,)).fetchone()
        return int(str(row[0])) if row else 0

    def outcomes(self) -> dict[str, int]:
        """The gateway's own count of answers by outcome so far (its /metrics), for cross-checking."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.admin_port}/metrics", timeout=5.0).text
        except httpx.HTTPError:
            return {}  # a cross-check only: the figures stand on wrk's counts
        counts: dict[str, int] = {}
        for family in text_string_to_metric_families(text):
            if family.name != "flashsale_gateway_requests":
                continue
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    outcome = sample.labels.get("outcome", "?")
                    counts[outcome] = counts.get(outcome, 0) + int(sample.value)
        return counts

    def fresh_token(self) -> str:
        return tokens.mint(self.user_key, f"probe-{uuid.uuid4().hex[:12]}")

    def _live_status(self) -> dict[str, object] | None:
        answer = httpx.get(self.server.base_url + "/api/status", timeout=2.0)
        status: dict[str, object] = answer.json()
        return status if status.get("state") == "live" and status.get("orderPath") else None

    def _answers_sold_out(self) -> bool:
        answer = httpx.post(
            self.server.base_url + self.order_path,
            headers={"Authorization": f"Bearer {self.fresh_token()}"},
            timeout=2.0,
        )
        return answer.status_code == 410

    def _redis(self) -> redis.Redis:
        return self.platform.redis.client()
