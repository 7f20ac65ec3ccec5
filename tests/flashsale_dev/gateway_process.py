"""A real gateway process (`flashsale gateway`, FLASHSALE_* environment) for tests and benchmarks."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from flashsale_dev.process import ManagedProcess
from flashsale_sale import tokens

FLASHSALE = Path(sys.executable).parent / "flashsale"
USER_TOKEN_KEY = "test-user-token-key-0123456789"


@dataclass
class SaleSetup:
    """The settings of one sale's gateway; `env()` renders them as the operator would."""

    redis_url: str
    kafka_bootstrap_servers: str
    database_url: str
    kafka_topic: str = ""
    sale_id: str = field(default_factory=lambda: f"sale-{uuid.uuid4().hex[:12]}")
    sale_name: str = "gadget-drop"
    stock: int = 10
    per_user_limit: int = 1
    starts_at: datetime = field(default_factory=lambda: datetime.now(UTC) + timedelta(hours=1))
    ends_at: datetime = field(default_factory=lambda: datetime.now(UTC) + timedelta(hours=3))
    user_token_key: str = USER_TOKEN_KEY
    order_path_key: str = field(default_factory=lambda: f"order-path-{uuid.uuid4().hex}")
    extra: dict[str, str] = field(default_factory=dict)

    def env(self, port: int, base: Mapping[str, str]) -> dict[str, str]:
        values = {
            "SALE_NAME": self.sale_name,
            "SALE_ID": self.sale_id,
            "STOCK": str(self.stock),
            "PER_USER_LIMIT": str(self.per_user_limit),
            "STARTS_AT": self.starts_at.isoformat(),
            "ENDS_AT": self.ends_at.isoformat(),
            "REDIS_URL": self.redis_url,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "KAFKA_TOPIC": self.kafka_topic,
            "DATABASE_URL": self.database_url,
            "PRODUCT_SKU": "GAD-1",
            "PRODUCT_NAME": "Gadget",
            "PRODUCT_PRICE": "19.99",
            "PRODUCT_CURRENCY": "EUR",
            "USER_TOKEN_KEY": self.user_token_key,
            "ORDER_PATH_KEY": self.order_path_key,
            "BIND_HOST": "127.0.0.1",
            "PORT": str(port),
            **self.extra,
        }
        clean = {k: v for k, v in base.items() if not k.startswith("FLASHSALE_")}
        return clean | {f"FLASHSALE_{key}": value for key, value in values.items()}


class GatewayProcess:
    def __init__(self, setup: SaleSetup, port: int, log_path: Path, base_env: Mapping[str, str]) -> None:
        self.setup = setup
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process = ManagedProcess(
            f"gateway-{port}", [str(FLASHSALE), "gateway"], log_path, env=setup.env(port, base_env)
        )

    def start(self, timeout: float = 90.0) -> None:
        """Starts the process and waits until /readyz says ready (Redis, Kafka, the flag read)."""
        self.process.start()
        self.process.wait_until(self._ready, timeout, "readiness (/readyz 200)")

    def stop(self) -> None:
        self.process.stop()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)

    def _ready(self) -> bool:
        return httpx.get(f"{self.url}/readyz", timeout=5.0).status_code == 200


class GatewayLauncher:
    """Starts gateways on reserved ports, logs under `log_dir`; `stop_all()` ends every one of them."""

    def __init__(self, reserve_port: Callable[[], int], log_dir: Path, base_env: Mapping[str, str]) -> None:
        self._reserve_port = reserve_port
        self._log_dir = log_dir
        self._base_env = dict(base_env)
        self.started: list[GatewayProcess] = []

    def __call__(self, setup: SaleSetup, *, wait_ready: bool = True) -> GatewayProcess:
        index = len(self.started)
        gateway = GatewayProcess(
            setup, self._reserve_port(), self._log_dir / f"gateway-{index}.log", self._base_env
        )
        self.started.append(gateway)
        if wait_ready:
            gateway.start()
        else:
            gateway.process.start()
        return gateway

    def stop_all(self) -> None:
        for gateway in self.started:
            gateway.stop()


def bearer(setup: SaleSetup, user: str, ttl: int = 3600) -> dict[str, str]:
    """The Authorization header of a fresh token for `user`, signed with the sale's user key."""
    return {"Authorization": f"Bearer {tokens.mint(setup.user_token_key.encode(), user, ttl)}"}


def status(gateway: GatewayProcess) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{gateway.url}/api/status", timeout=10).json()
    return answer


def status_in(gateway: GatewayProcess, state: str) -> dict[str, Any] | None:
    """The gateway's status if it is in `state` (a probe for wait_for)."""
    seen = status(gateway)
    return seen if seen["state"] == state else None
