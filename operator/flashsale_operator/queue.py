"""Where a sale's queue is: a topic on the platform's Kafka (shared) or a broker of its own (dedicated)."""

from __future__ import annotations

from typing import Final

from flashsale_operator.config import OperatorConfig
from flashsale_operator.render_meta import SaleRef
from flashsale_operator.spec import FlashSaleSpec, QueueMode

BROKER_PORT: Final = 9092
CONTROLLER_PORT: Final = 9093


def broker_service(ref: SaleRef) -> str:
    """The headless Service (and StatefulSet) of a dedicated broker."""
    return f"{ref.name}-kafka"


def broker_host(ref: SaleRef) -> str:
    """The dedicated broker's stable DNS name: pod 0 of its StatefulSet, through the headless Service."""
    service = broker_service(ref)
    return f"{service}-0.{service}.{ref.namespace}.svc.cluster.local"


def bootstrap_for(ref: SaleRef, mode: QueueMode | str, config: OperatorConfig) -> str:
    """By mode alone: the teardown knows the sale's mode from its body even when no spec was accepted."""
    if mode == "dedicated":
        return f"{broker_host(ref)}:{BROKER_PORT}"
    return config.kafka_bootstrap_servers


def bootstrap_servers(ref: SaleRef, spec: FlashSaleSpec, config: OperatorConfig) -> str:
    return bootstrap_for(ref, spec.queue.mode, config)


def is_dedicated(spec: FlashSaleSpec) -> bool:
    return spec.queue.mode == "dedicated"
