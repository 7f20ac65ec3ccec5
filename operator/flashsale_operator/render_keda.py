"""The sale's KEDA ScaledObject, for clusters that already run KEDA (`spec.consumers.scaler: keda`).

Instead of the operator's own scaling loop, KEDA's Kafka scaler reads the consumer group's lag and
an HPA it creates scales the consumer Deployment (which therefore carries no `replicas`). The
parameters say what the builtin loop does, as far as KEDA can: the same group, topic and threshold,
a partition count as the ceiling, the same scale-down window, and an unread partition counted from
the earliest offset (the consumers start there). KEDA still polls and the HPA still syncs on their
own clocks (pollingInterval here, 15 s by default): the builtin loop reacts faster
(../shared/notes/lag-autoscaling.md). Fields: keda.sh/v1alpha1 ScaledObject, KEDA's CRD
`scaledobjects.keda.sh` and its Kafka scaler's trigger metadata.
"""

from __future__ import annotations

from typing import Any, Final

from flashsale_operator.config import OperatorConfig
from flashsale_operator.render_env import consumer_settings
from flashsale_operator.render_meta import SaleRef, child_name, metadata
from flashsale_operator.spec import FlashSaleSpec
from flashsale_sale.contract import consumer_group, topic_name

KEDA_API_VERSION: Final = "keda.sh/v1alpha1"
POLLING_INTERVAL_SECONDS: Final = 5  # KEDA's default is 30 s: far too slow for a flash sale
COOLDOWN_PERIOD_SECONDS: Final = 60  # only for scaling to zero, which minReplicas >= 1 never does


def scaled_object(ref: SaleRef, spec: FlashSaleSpec, config: OperatorConfig) -> dict[str, Any]:
    """`<sale>-consumer`: scales the consumer Deployment of the same name on the topic's lag."""
    consumers, name = spec.consumers, child_name(ref, "consumer")
    bootstrap = consumer_settings(ref, spec, config)["FLASHSALE_KAFKA_BOOTSTRAP_SERVERS"]
    window = consumers.scale_down_stabilization_seconds
    return {
        "apiVersion": KEDA_API_VERSION,
        "kind": "ScaledObject",
        "metadata": metadata(ref, name, "consumer"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "pollingInterval": POLLING_INTERVAL_SECONDS,
            "cooldownPeriod": COOLDOWN_PERIOD_SECONDS,
            "minReplicaCount": consumers.min_replicas,
            # Capped at the partitions even when maxReplicas says more: a consumer beyond them owns nothing.
            "maxReplicaCount": consumers.ceiling(spec.queue.partitions),
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": window}},
                },
            },
            "triggers": [
                {
                    "type": "kafka",
                    "metadata": {  # KEDA's trigger metadata is strings only
                        "bootstrapServers": bootstrap,
                        "consumerGroup": consumer_group(ref.uid),
                        "topic": topic_name(ref.uid),
                        "lagThreshold": str(consumers.lag_threshold),
                        "offsetResetPolicy": "earliest",
                        "allowIdleConsumers": "false",
                        "limitToPartitionsWithLag": "false",
                    },
                }
            ],
        },
    }
