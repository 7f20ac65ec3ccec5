"""Every child of a FlashSale as a plain manifest: pure functions of the sale, its spec and the config.

Each child is named after the sale, lives in its namespace, is owned by it (garbage-collected with
it) and carries the `app.kubernetes.io/*` labels. The operator applies them with server-side apply;
the golden files in tests/unit/golden/operator/ show every one for an example sale.
"""

from __future__ import annotations

from typing import Any

from flashsale_operator.config import OperatorConfig
from flashsale_operator.render_env import (
    CONFIG_HASH_ANNOTATION,
    ORDER_PATH_KEY,
    RETIRED_ENTRIES,
    SECRETS_DIR,
    rfc3339,
    secret_values,
)
from flashsale_operator.render_kafka import broker_children
from flashsale_operator.render_keda import scaled_object
from flashsale_operator.render_meta import (
    MAX_SALE_NAME_LENGTH,
    SaleRef,
    child_name,
    labels,
    metadata,
    owner_reference,
)
from flashsale_operator.render_network import network_policies
from flashsale_operator.render_workloads import (
    consumer_deployment,
    gateway_deployment,
    gateway_pdb,
    gateway_service,
    placement,
)
from flashsale_operator.spec import FlashSaleSpec

__all__ = [
    "CONFIG_HASH_ANNOTATION",
    "MAX_SALE_NAME_LENGTH",
    "SECRETS_DIR",
    "SaleRef",
    "broker_children",
    "children",
    "consumer_deployment",
    "gateway_deployment",
    "gateway_pdb",
    "gateway_service",
    "labels",
    "network_policies",
    "owner_reference",
    "placement",
    "rfc3339",
    "sale_secret",
    "scaled_object",
]


def sale_secret(ref: SaleRef, config: OperatorConfig, *, order_path_key: str | None) -> dict[str, Any]:
    """`<sale>-secrets`: the platform's entries for this sale, and its own order-path key when given.

    The caller creates the Secret once with a fresh key, then patches only the platform's entries (a
    merge patch of `stringData` leaves the key alone): the key must never change while the sale lives,
    since it derives the secret order path. (Not server-side apply under one field manager: applying
    without a key that manager applied before would remove it.) The patch (no order-path key) also
    removes the entries earlier versions wrote (`data: {name: null}`), the platform's key among them.
    """
    values = secret_values(ref, config)
    secret: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(ref, child_name(ref, "secrets"), "secrets"),
        "type": "Opaque",
    }
    if order_path_key is not None:
        values[ORDER_PATH_KEY] = order_path_key
    else:
        secret["data"] = dict.fromkeys(RETIRED_ENTRIES)
    secret["stringData"] = values
    return secret


def children(ref: SaleRef, spec: FlashSaleSpec, config: OperatorConfig) -> list[dict[str, Any]]:
    """Every child but the Secret (applied first, on its own terms), in the order to apply them.

    The NetworkPolicies come before any pod exists, so no sale pod is ever unprotected; then, with a
    dedicated queue, the broker's headless Service and StatefulSet (the operator waits for the broker
    and creates the topic before it applies the rest); the budget and the Service before the
    gateways; the consumers (and, with `scaler: keda`, the ScaledObject that scales them) before the
    gateways that feed them.
    """
    consumers = [consumer_deployment(ref, spec, config)]
    if spec.consumers.scaler == "keda":
        consumers.append(scaled_object(ref, spec, config))
    return [
        *network_policies(ref, config, spec.queue.mode),
        *broker_children(ref, spec, config),
        gateway_pdb(ref, spec),
        gateway_service(ref, spec),
        *consumers,
        gateway_deployment(ref, spec, config),
    ]
