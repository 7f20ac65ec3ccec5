"""What a sale's processes are told: the `FLASHSALE_*` environment, and a hash that rolls the pods.

The names are the fields of flashsale_sale.settings (GatewaySettings, ConsumerSettings); the unit
tests load the settings from what is rendered here, so a renamed field fails a test, not a sale.
Secrets (the keys, the database URLs) are never in the environment: they are files of the sale's
Secret, mounted at SECRETS_DIR, each container getting only its own entries (`secret_items`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any, Final

from flashsale_operator import queue
from flashsale_operator.config import OperatorConfig
from flashsale_operator.render_meta import SaleRef
from flashsale_operator.spec import FlashSaleSpec
from flashsale_sale import tokens
from flashsale_sale.contract import consumer_group, topic_name

SECRETS_DIR: Final = "/var/run/secrets/flashsale"
GATEWAY_PORT: Final = 8080  # the public port: the buy path, the page, the status, orders, payment
# The gateway's admin port (health, readiness, metrics, OpenAPI) and the consumer's metrics port: the
# kubelet's probes and Prometheus use it; no Service exposes it.
ADMIN_PORT: Final = 9090
METRICS_PORT: Final = 9090
CONFIG_HASH_ANNOTATION: Final = "flashsale.dev/config-hash"

# Set by every manifest on a real cluster (the local node agent sets them too); the processes bind
# the pod's own address, not 0.0.0.0 (pods share loopback locally) nor 127.0.0.1 (unreachable).
_DOWNWARD: Final = (
    ("POD_NAME", "metadata.name"),
    ("POD_NAMESPACE", "metadata.namespace"),
    ("POD_IP", "status.podIP"),
    ("FLASHSALE_BIND_HOST", "status.podIP"),
)


def rfc3339(moment: datetime) -> str:
    """UTC with a `Z`: one spelling per instant, so an unchanged schedule never rolls the pods."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def sale_settings(ref: SaleRef, spec: FlashSaleSpec, config: OperatorConfig) -> dict[str, str]:
    """SaleSettings: what every process of the sale knows."""
    return {
        "FLASHSALE_SALE_NAME": ref.name,
        "FLASHSALE_SALE_ID": ref.uid,
        "FLASHSALE_STOCK": str(spec.stock),
        "FLASHSALE_PER_USER_LIMIT": str(spec.per_user_limit),
        "FLASHSALE_STARTS_AT": rfc3339(spec.starts_at),
        "FLASHSALE_ENDS_AT": rfc3339(spec.ends_at),
        "FLASHSALE_PAYMENT_TIMEOUT_SECONDS": str(spec.payment_timeout_seconds),
        "FLASHSALE_REDIS_URL": config.redis_url,
        "FLASHSALE_KAFKA_BOOTSTRAP_SERVERS": queue.bootstrap_servers(ref, spec, config),
        # Explicit though it is the default: the operator creates exactly this topic.
        "FLASHSALE_KAFKA_TOPIC": topic_name(ref.uid),
    }


def gateway_settings(ref: SaleRef, spec: FlashSaleSpec, config: OperatorConfig) -> dict[str, str]:
    product, gateway = spec.product, spec.gateway
    settings = {
        **sale_settings(ref, spec, config),
        "FLASHSALE_PRODUCT_SKU": product.sku,
        "FLASHSALE_PRODUCT_NAME": product.name,
        "FLASHSALE_PRODUCT_PRICE": product.price,
        "FLASHSALE_PRODUCT_CURRENCY": product.currency,
    }
    # Empty strings are left out: the API server drops an empty `value`, and the defaults are "".
    if product.description:
        settings["FLASHSALE_PRODUCT_DESCRIPTION"] = product.description
    if product.image_url:
        settings["FLASHSALE_PRODUCT_IMAGE_URL"] = product.image_url
    if gateway.admission_rate is not None:  # unset: the gateway's own default
        settings["FLASHSALE_ADMISSION_RATE"] = str(gateway.admission_rate)
    settings["FLASHSALE_USER_RATE_REQUESTS"] = str(gateway.user_rate_limit.requests)
    settings["FLASHSALE_USER_RATE_SECONDS"] = str(gateway.user_rate_limit.per_seconds)
    settings["FLASHSALE_PORT"] = str(GATEWAY_PORT)
    settings["FLASHSALE_ADMIN_PORT"] = str(ADMIN_PORT)
    return settings


def consumer_settings(ref: SaleRef, spec: FlashSaleSpec, config: OperatorConfig) -> dict[str, str]:
    return {
        **sale_settings(ref, spec, config),
        "FLASHSALE_CONSUMER_GROUP": consumer_group(ref.uid),
        "FLASHSALE_METRICS_PORT": str(METRICS_PORT),
    }


def container_env(settings: dict[str, str]) -> list[dict[str, Any]]:
    """The downward API first, then the secrets directory and the settings, in a stable order."""
    env: list[dict[str, Any]] = [
        {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}
        for name, path in _DOWNWARD
    ]
    env.append({"name": "FLASHSALE_SECRETS_DIR", "value": SECRETS_DIR})
    env += [{"name": name, "value": value} for name, value in settings.items()]
    return env


# The sale Secret's entries each container mounts, and the file name it reads each from. The gateway's
# and the consumer's database URLs are both FLASHSALE_DATABASE_URL to the process that reads one.
SALE_TOKEN_KEY: Final = "FLASHSALE_SALE_TOKEN_KEY"  # noqa: S105 - an entry name
SALE_PAYMENT_KEY: Final = "FLASHSALE_SALE_PAYMENT_KEY"
GATEWAY_DATABASE_URL: Final = "FLASHSALE_GATEWAY_DATABASE_URL"
CONSUMER_DATABASE_URL: Final = "FLASHSALE_CONSUMER_DATABASE_URL"
ORDER_PATH_KEY: Final = "FLASHSALE_ORDER_PATH_KEY"
_MOUNTED: Final = {
    "gateway": {
        SALE_TOKEN_KEY: SALE_TOKEN_KEY,
        SALE_PAYMENT_KEY: SALE_PAYMENT_KEY,
        ORDER_PATH_KEY: ORDER_PATH_KEY,
        GATEWAY_DATABASE_URL: "FLASHSALE_DATABASE_URL",
    },
    "consumer": {CONSUMER_DATABASE_URL: "FLASHSALE_DATABASE_URL"},
}
# Entries earlier versions wrote (the platform's user-token key itself, one database URL for all): a
# refresh of an existing sale's Secret removes them.
RETIRED_ENTRIES: Final = ("FLASHSALE_USER_TOKEN_KEY", "FLASHSALE_DATABASE_URL")


def secret_values(ref: SaleRef, config: OperatorConfig) -> dict[str, str]:
    """The platform's entries of the sale's Secret (the sale's own order-path key aside): the sale's
    keys derived from the platform's and its `namespace/name`, never the platform's keys."""
    sale = f"{ref.namespace}/{ref.name}"
    return {
        SALE_TOKEN_KEY: tokens.sale_token_key(config.user_token_key.get_secret_value().encode(), sale),
        SALE_PAYMENT_KEY: tokens.sale_payment_key(config.payment_key.get_secret_value().encode(), sale),
        GATEWAY_DATABASE_URL: config.gateway_database_url.get_secret_value(),
        CONSUMER_DATABASE_URL: config.consumer_database_url.get_secret_value(),
    }


def secret_items(component: str) -> list[dict[str, str]]:
    """The Secret volume's `items` of a component: its own entries only, as the files it reads."""
    return [{"key": key, "path": path} for key, path in _MOUNTED[component].items()]


def config_hash(env: list[dict[str, Any]], config: OperatorConfig) -> str:
    """Changes when the env or the platform's secrets do, so the Deployment rolls its pods.

    The processes read their secret files once at start, so a new database URL or key needs new pods.
    The sale's keys are functions of the platform's and of the sale's name (fixed for a Deployment),
    so hashing the platform's values is enough. An HMAC keyed by the user-token key rather than a bare
    sha256: the annotation is readable by anyone who may read Deployments, and a database password
    must not be guessable offline from it.
    """
    secrets = {
        "user_token_key": config.user_token_key.get_secret_value(),
        "payment_key": config.payment_key.get_secret_value(),
        "gateway_database_url": config.gateway_database_url.get_secret_value(),
        "consumer_database_url": config.consumer_database_url.get_secret_value(),
    }
    payload = json.dumps({"env": env, "secrets": secrets}, sort_keys=True).encode()
    key = config.user_token_key.get_secret_value().encode()
    return hmac.new(key, payload, hashlib.sha256).hexdigest()[:16]
