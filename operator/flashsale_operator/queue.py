"""Where a sale's queue is: a topic on the platform's Kafka (shared) or a broker of its own (dedicated)."""

from __future__ import annotations

from typing import Final

from flashsale_operator.config import OperatorConfig
from flashsale_operator.render_meta import SaleRef
from flashsale_operator.spec import FlashSaleSpec

BROKER_PORT: Final = 9092


def broker_service(ref: SaleRef) -> str:
    """The headless Service (and StatefulSet) of a dedicated broker."""
    return f"{ref.name}-kafka"


def broker_host(ref: SaleRef) -> str:
    """The dedicated broker's stable DNS name: pod 0 of its StatefulSet, through the headless Service."""
    service = broker_service(ref)
    return f"{service}-0.{service}.{ref.namespace}.svc.cluster.local"


def bootstrap_servers(ref: SaleRef, spec: FlashSaleSpec, config: OperatorConfig) -> str:
    if getattr(spec.queue, "mode", "shared") == "dedicated":
        return f"{broker_host(ref)}:{BROKER_PORT}"
    return config.kafka_bootstrap_servers
