"""A dedicated queue (`spec.queue.mode: dedicated`): the sale's own single-node Kafka (KRaft) (pure).

Two children, applied before any other pod of the sale exists (after its NetworkPolicies):

- a headless Service `<sale>-kafka` (`clusterIP: None`, `publishNotReadyAddresses`), which gives the
  broker its stable DNS name `<sale>-kafka-0.<sale>-kafka.<ns>.svc.cluster.local` (queue.broker_host);
- a StatefulSet `<sale>-kafka` of one pod running broker and controller in one process, its log
  directory on the claim `data` (1Gi, the cluster's default StorageClass), deleted with the sale
  (`persistentVolumeClaimRetentionPolicy.whenDeleted: Delete`).

The image contract is the official apache/kafka image's: every `KAFKA_<PROPERTY>` variable becomes
the property (`_` -> `.`, `__` -> `_`, `___` -> `-`, lower case), `CLUSTER_ID` is the id the log
directory is formatted with at the first start (a formatted directory is left alone), then the broker
runs in the foreground and SIGTERM is a controlled shutdown. `KAFKA_HEAP_OPTS` sets the heap.
Locally the node agent's `flashsale/kafka` image (tests/flashsale_dev/kafka_image.py) honours the
same contract with the platform's cached jars; a real cluster sets `kafka_image` to apache/kafka.

The listeners bind the pod's own address (`$(POD_IP)`, expanded from the downward-API variable
defined before them, as the kubelet does), not 0.0.0.0: locally every pod shares the host's
loopback, and two sales' brokers must not fight for port 9092. The controller quorum is static
(`controller.quorum.voters`, the node itself at its pod address), so a restarted pod with a new
address needs no change to what was formatted.
"""

from __future__ import annotations

import base64
import copy
import uuid
from typing import Any, Final

from flashsale_operator import queue
from flashsale_operator.config import OperatorConfig
from flashsale_operator.render_meta import SaleRef, labels, metadata, selector
from flashsale_operator.render_security import harden_pod
from flashsale_operator.render_workloads import placement
from flashsale_operator.spec import FlashSaleSpec

COMPONENT: Final = "kafka"
DATA_VOLUME: Final = "data"
DATA_MOUNT: Final = "/var/lib/kafka/data"
# A directory inside the volume, not its root: a file system's own entries there (ext4's lost+found)
# would be taken for a broken partition directory.
LOG_DIR: Final = f"{DATA_MOUNT}/logs"
DATA_SIZE: Final = "1Gi"
NODE_ID: Final = 1
TERMINATION_GRACE: Final = 30  # a controlled shutdown of one idle-ish broker takes a few seconds
HEAP_OPTS: Final = "-Xms256m -Xmx512m"
DEFAULT_RESOURCES: Final = {
    "requests": {"cpu": "500m", "memory": "768Mi"},
    "limits": {"memory": "1Gi"},  # the heap (512 MiB) plus the JVM and the page cache's share
}

# One node: every internal topic with replication 1 and one partition (the default 50 partitions of
# the offsets topic make the first group join take seconds); no topic but the operator's.
SINGLE_NODE: Final = {
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "min.insync.replicas": "1",
    "default.replication.factor": "1",
    "num.partitions": "1",
    "group.initial.rebalance.delay.ms": "0",
    "auto.create.topics.enable": "false",
}

# Readiness: the PLAINTEXT port accepts (Kafka opens it once the broker has started). Liveness is
# patient: a broker replaying its log after a crash must not be killed for it.
READINESS: Final = {
    "tcpSocket": {"port": "kafka"},
    "periodSeconds": 2,
    "timeoutSeconds": 2,
    "failureThreshold": 3,
    "successThreshold": 1,
}
LIVENESS: Final = {
    "tcpSocket": {"port": "kafka"},
    "initialDelaySeconds": 60,
    "periodSeconds": 10,
    "timeoutSeconds": 5,
    "failureThreshold": 6,
    "successThreshold": 1,
}


def env_name(prop: str) -> str:
    """The apache/kafka image's variable for a property: `log.dirs` -> `KAFKA_LOG_DIRS`."""
    return "KAFKA_" + prop.replace("_", "__").replace("-", "___").replace(".", "_").upper()


def cluster_id(ref: SaleRef) -> str:
    """The sale's KRaft cluster id: its uid as 22 characters of URL-safe base64 (stable per sale)."""
    try:
        raw = uuid.UUID(ref.uid).bytes
    except ValueError:
        raw = uuid.uuid5(uuid.NAMESPACE_URL, ref.uid).bytes
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def broker_properties(ref: SaleRef) -> dict[str, str]:
    """The broker's configuration; `$(POD_IP)` is expanded where the container starts."""
    controller = f"$(POD_IP):{queue.CONTROLLER_PORT}"
    return {
        "node.id": str(NODE_ID),
        "process.roles": "broker,controller",
        "listeners": f"PLAINTEXT://$(POD_IP):{queue.BROKER_PORT},CONTROLLER://{controller}",
        "advertised.listeners": f"PLAINTEXT://{queue.broker_host(ref)}:{queue.BROKER_PORT}",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "controller.quorum.voters": f"{NODE_ID}@{controller}",
        "log.dirs": LOG_DIR,
        **SINGLE_NODE,
    }


def broker_env(ref: SaleRef) -> list[dict[str, Any]]:
    """POD_IP first (the listeners refer to it), then the image's variables in a stable order."""
    env: list[dict[str, Any]] = [
        {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}
        for name, path in (
            ("POD_NAME", "metadata.name"),
            ("POD_NAMESPACE", "metadata.namespace"),
            ("POD_IP", "status.podIP"),
        )
    ]
    env.append({"name": "CLUSTER_ID", "value": cluster_id(ref)})
    env.append({"name": "KAFKA_HEAP_OPTS", "value": HEAP_OPTS})
    env += [{"name": env_name(prop), "value": value} for prop, value in broker_properties(ref).items()]
    return env


def broker_service(ref: SaleRef) -> dict[str, Any]:
    """Headless: DNS names the pod itself; not-ready addresses published, so the name resolves from
    the moment the pod has an address (the broker's clients retry until it answers)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(ref, queue.broker_service(ref), COMPONENT),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": selector(ref, COMPONENT),
            "ports": [
                {"name": "kafka", "port": queue.BROKER_PORT, "targetPort": "kafka", "protocol": "TCP"},
                {
                    "name": "controller",
                    "port": queue.CONTROLLER_PORT,
                    "targetPort": "controller",
                    "protocol": "TCP",
                },
            ],
        },
    }


def broker_statefulset(ref: SaleRef, spec: FlashSaleSpec, config: OperatorConfig) -> dict[str, Any]:
    container = {
        "name": COMPONENT,
        "image": config.kafka_image,
        "ports": [
            {"name": "kafka", "containerPort": queue.BROKER_PORT, "protocol": "TCP"},
            {"name": "controller", "containerPort": queue.CONTROLLER_PORT, "protocol": "TCP"},
        ],
        "env": broker_env(ref),
        "volumeMounts": [{"name": DATA_VOLUME, "mountPath": DATA_MOUNT}],
        "resources": copy.deepcopy(DEFAULT_RESOURCES),
        "readinessProbe": copy.deepcopy(READINESS),
        "livenessProbe": copy.deepcopy(LIVENESS),
    }
    name = queue.broker_service(ref)
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(ref, name, COMPONENT),
        "spec": {
            "replicas": 1,
            "serviceName": name,
            "selector": {"matchLabels": selector(ref, COMPONENT)},
            "podManagementPolicy": "Parallel",  # one pod: no ordering to wait for
            "updateStrategy": {"type": "RollingUpdate"},
            # The data goes with the sale (the orders are in PostgreSQL, not here).
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"},
            "template": {
                "metadata": {"labels": labels(ref, COMPONENT)},
                "spec": harden_pod(
                    {
                        "automountServiceAccountToken": False,
                        "enableServiceLinks": False,
                        "terminationGracePeriodSeconds": TERMINATION_GRACE,
                        **placement(spec.isolation, config),
                        "containers": [container],
                    }
                ),
            },
            "volumeClaimTemplates": [
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": DATA_VOLUME, "labels": labels(ref, COMPONENT)},
                    # No storageClassName: the cluster's default class.
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "volumeMode": "Filesystem",
                        "resources": {"requests": {"storage": DATA_SIZE}},
                    },
                }
            ],
        },
    }


def broker_children(ref: SaleRef, spec: FlashSaleSpec, config: OperatorConfig) -> list[dict[str, Any]]:
    """The Service first (the pod's DNS name), then the StatefulSet; nothing for a shared queue."""
    if not queue.is_dedicated(spec):
        return []
    return [broker_service(ref), broker_statefulset(ref, spec, config)]
