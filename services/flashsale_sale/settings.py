"""The settings of a sale's processes: environment variables `FLASHSALE_*`, secrets also from files.

This is what the operator renders into the gateway and consumer Deployments. Secrets (the keys, the
database URL) may come from files named like the variable (`FLASHSALE_SALE_TOKEN_KEY`, ...) in the
directory `FLASHSALE_SECRETS_DIR` names, as a mounted Secret gives them. Invalid settings stop the
process at start with one line per problem (`load` below).
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Final, Self, TypeVar

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from flashsale_sale.contract import consumer_group, topic_name

ENV_PREFIX: Final = "FLASHSALE_"
SECRETS_DIR_ENV: Final = "FLASHSALE_SECRETS_DIR"

MAX_PER_USER_LIMIT: Final = 1000  # the hard bound; a sale's own limit may change while it runs

SaleId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")]
Key = Annotated[SecretStr, Field(min_length=16)]


class SaleSettings(BaseSettings):
    """What every process of one sale knows: who the sale is, its rules, and where the middleware is."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    sale_name: Annotated[str, Field(min_length=1, max_length=253)]
    sale_id: SaleId  # the FlashSale's uid: unique per namespace and name, and across re-creations
    stock: Annotated[int, Field(ge=1, le=10_000_000)]
    per_user_limit: Annotated[int, Field(ge=1, le=MAX_PER_USER_LIMIT)] = 1
    starts_at: datetime
    ends_at: datetime
    # At least 1 s so tests can race payments against expiry; a real sale gives minutes.
    payment_timeout_seconds: Annotated[int, Field(ge=1, le=86_400)] = 900
    # The gateways' Kafka delivery timeout: a publish not acknowledged by then failed (503). Shared:
    # the consumers' lost-reservation deadline must stay well above it (ConsumerSettings).
    publish_timeout_seconds: Annotated[float, Field(ge=1, le=300)] = 10.0

    redis_url: Annotated[str, Field(pattern=r"^rediss?://")]
    kafka_bootstrap_servers: Annotated[str, Field(min_length=3)]
    kafka_topic: str = ""  # default: the sale's own topic (contract.topic_name)
    database_url: Annotated[SecretStr, Field(min_length=1)]

    @model_validator(mode="after")
    def _check_schedule(self) -> Self:
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("FLASHSALE_STARTS_AT and FLASHSALE_ENDS_AT need a UTC offset (RFC 3339)")
        if self.ends_at <= self.starts_at:
            raise ValueError("FLASHSALE_ENDS_AT must be after FLASHSALE_STARTS_AT")
        return self

    @property
    def topic(self) -> str:
        return self.kafka_topic or topic_name(self.sale_id)


class GatewaySettings(SaleSettings):
    """The gateway adds the product it shows, the keys it checks, and its fail-fast limits."""

    product_sku: Annotated[str, Field(min_length=1, max_length=64)]
    product_name: Annotated[str, Field(min_length=1, max_length=200)]
    product_price: Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2)]
    product_currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    product_description: Annotated[str, Field(max_length=4000)] = ""
    product_image_url: Annotated[str, Field(max_length=2000)] = ""

    # The sale's own keys, never the platform's (tokens.sale_token_key / sale_payment_key of the
    # platform keys and the sale's namespace/name): a leaked one mints for this sale alone.
    sale_token_key: Key  # verifies the shoppers' user tokens
    sale_payment_key: Key  # verifies the shop's payment-service credential (the pay route)
    order_path_key: Key  # the sale's own: derives the secret order path

    admission_rate: Annotated[float, Field(gt=0)] = 20_000.0  # admitted buy attempts/s, this replica
    admission_burst: Annotated[int, Field(ge=1)] = 2_000
    user_rate_requests: Annotated[int, Field(ge=1)] = 5  # per user, per window, this replica
    user_rate_seconds: Annotated[float, Field(gt=0)] = 1.0
    page_max_age_seconds: Annotated[int, Field(ge=0, le=86_400)] = 30
    flag_poll_seconds: Annotated[float, Field(gt=0, le=10)] = 0.05  # the fallback to pub/sub

    bind_host: str = "127.0.0.1"  # the manifests set this to the pod's IP (downward API)
    port: Annotated[int, Field(ge=1, le=65_535)] = 8080
    # Health, readiness, metrics and the OpenAPI document: never on the public port (docs/gateway.md).
    admin_port: Annotated[int, Field(ge=1, le=65_535)] = 9090

    @model_validator(mode="after")
    def _check_ports(self) -> Self:
        if self.admin_port == self.port:
            raise ValueError("FLASHSALE_ADMIN_PORT must differ from FLASHSALE_PORT")
        return self


# The recovery may give a reservation back only once every publish attempted for it has ended. A
# publish ends within the publish timeout of its produce() call; the attempt's time is taken in the
# gate a little earlier, and a busy gateway's event loop adds its own delay. Twice the timeout plus
# this margin leaves a whole timeout of slack for that.
LOST_RESERVATION_MARGIN_SECONDS: Final = 2.0


def safe_lost_reservation_seconds(publish_timeout_seconds: float) -> float:
    """The shortest safe lost-reservation deadline for the gateways' publish timeout."""
    return 2 * publish_timeout_seconds + LOST_RESERVATION_MARGIN_SECONDS


class ConsumerSettings(SaleSettings):
    """The consumer adds its batch shape and where it serves metrics."""

    consumer_group: str = ""  # default: the sale's own group (contract.consumer_group)
    batch_size: Annotated[int, Field(ge=1, le=10_000)] = 500
    batch_timeout_seconds: Annotated[float, Field(gt=0, le=10)] = 0.2
    bind_host: str = "127.0.0.1"
    metrics_port: Annotated[int, Field(ge=1, le=65_535)] = 9090
    # A reservation whose last attempt is this old, with no order, is lost (the recovery returns it once
    # the group has no lag); at least safe_lost_reservation_seconds(publish timeout), checked below.
    lost_reservation_seconds: Annotated[float, Field(ge=5, le=86_400)] = 60.0

    @model_validator(mode="after")
    def _check_lost_reservation_deadline(self) -> Self:
        floor = safe_lost_reservation_seconds(self.publish_timeout_seconds)
        if self.lost_reservation_seconds < floor:
            raise ValueError(
                f"FLASHSALE_LOST_RESERVATION_SECONDS ({self.lost_reservation_seconds:g}) must be at least"
                f" {floor:g}: twice the gateways' publish timeout (FLASHSALE_PUBLISH_TIMEOUT_SECONDS,"
                f" {self.publish_timeout_seconds:g}) plus {LOST_RESERVATION_MARGIN_SECONDS:g} s, or a"
                " publish still in flight could have its reservation given back"
            )
        return self

    @property
    def group(self) -> str:
        return self.consumer_group or consumer_group(self.sale_id)


S = TypeVar("S", bound=SaleSettings)


def load(kind: type[S]) -> S:
    """The settings from the environment (and secret files), or exit 2 with one line per problem."""
    secrets_dir = os.environ.get(SECRETS_DIR_ENV)
    try:
        if secrets_dir and Path(secrets_dir).is_dir():
            return kind(_secrets_dir=secrets_dir)  # type: ignore[call-arg]
        return kind()  # type: ignore[call-arg]
    except ValidationError as error:
        for line in describe_errors(error):
            print(f"invalid settings: {line}", file=sys.stderr)
        raise SystemExit(2) from None


def describe_errors(error: ValidationError) -> list[str]:
    lines = []
    for problem in error.errors(include_url=False, include_input=False):
        where = "".join(str(part) for part in problem["loc"][:1])
        name = f"{ENV_PREFIX}{where.upper()}" if where else "settings"
        lines.append(f"{name}: {problem['msg']}")
    return lines
