"""What a node agent's node reports (pure): healthy conditions, loopback addresses, a generous size.

The capacity is nominal (the scheduler needs numbers to place pods); nothing enforces it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from flashsale_dev.cluster.node_agent.lifecycle import rfc3339
from flashsale_dev.cluster.node_agent.pod_status import HOST_IP

CAPACITY = {"cpu": "32", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"}
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION = 40  # seconds, as kwok's nodes; renewed every RENEW seconds
RENEW_EVERY = 10.0

_CONDITIONS = (
    ("Ready", "True", "KubeletReady", "flashsale node agent is posting ready status"),
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "node agent has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "node agent has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "node agent has sufficient PID available"),
)


def micro_time(epoch: float) -> str:
    """A Lease's MicroTime: RFC 3339 with microseconds."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node_conditions(previous: Sequence[Mapping[str, Any]], now: float) -> list[dict[str, Any]]:
    """Healthy conditions; a transition time changes only when the status does."""
    before = {c.get("type"): c for c in previous}
    conditions = []
    for kind, status, reason, message in _CONDITIONS:
        old = before.get(kind) or {}
        unchanged = old.get("status") == status and old.get("lastTransitionTime")
        conditions.append(
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": rfc3339(now),
                "lastTransitionTime": old["lastTransitionTime"] if unchanged else rfc3339(now),
            }
        )
    return conditions


def node_status(
    name: str, previous: Sequence[Mapping[str, Any]], now: float, kubelet_version: str, boot_id: str
) -> dict[str, Any]:
    machine = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.flashsale.local"))
    return {
        "conditions": node_conditions(previous, now),
        "addresses": [{"type": "InternalIP", "address": HOST_IP}, {"type": "Hostname", "address": name}],
        "capacity": dict(CAPACITY),
        "allocatable": dict(CAPACITY),
        "nodeInfo": {
            "machineID": machine.replace("-", ""),
            "systemUUID": machine,
            "bootID": boot_id,
            "kernelVersion": os.uname().release,
            "osImage": "FlashSale node agent (local processes, no containers)",
            "containerRuntimeVersion": "flashsale-local://1",
            "kubeletVersion": kubelet_version,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    }


def lease(name: str, node_uid: str, now: float) -> dict[str, Any]:
    """The node's heartbeat: the node-lifecycle controller marks a node NotReady when it goes stale."""
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": node_uid}],
        },
        "spec": {
            "holderIdentity": name,
            "leaseDurationSeconds": LEASE_DURATION,
            "renewTime": micro_time(now),
        },
    }
