"""What a sale's processes are told: the `FLASHSALE_*` environment, and a hash that rolls the pods.

The names are the fields of flashsale_sale.settings (GatewaySettings, ConsumerSettings); the unit
tests load the settings from what is rendered here, so a renamed field fails a test, not a sale.
Secrets (the keys, the database URL) are never in the environment: they are files of the sale's
Secret, mounted at SECRETS_DIR.
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


def secret_values(config: OperatorConfig) -> dict[str, str]:
    """The platform-wide entries of every sale's Secret (the sale's own order-path key aside)."""
    return {
        "FLASHSALE_USER_TOKEN_KEY": config.user_token_key.get_secret_value(),
        "FLASHSALE_DATABASE_URL": config.database_url.get_secret_value(),
    }


def config_hash(env: list[dict[str, Any]], config: OperatorConfig) -> str:
    """Changes when the env or the shared Secret's content does, so the Deployment rolls its pods.

    The processes read their secret files once at start, so a new database URL or token key needs new
    pods. An HMAC keyed by the user-token key rather than a bare sha256: the annotation is readable by
    anyone who may read Deployments, and a database password must not be guessable offline from it.
    """
    payload = json.dumps({"env": env, "secrets": secret_values(config)}, sort_keys=True).encode()
    key = config.user_token_key.get_secret_value().encode()
    return hmac.new(key, payload, hashlib.sha256).hexdigest()[:16]
