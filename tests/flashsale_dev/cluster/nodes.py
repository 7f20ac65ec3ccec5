"""The local cluster's nodes and the "regular shop" workload, as plain manifests (pure functions).

Three pools: `pool=shop` runs the regular shop (simulated by kwok), `pool=flashsale` is tainted
`dedicated=flashsale:NoSchedule` and is served by the node agent, which really runs project images;
`pool=system` (one untainted node-agent node) runs the platform's own pods (the operator, later
monitoring), which select it. The label `flashsale.dev/kubelet` says which of the two kubelet
stand-ins serves a node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KUBELET_LABEL = "flashsale.dev/kubelet"
KWOK = "kwok"
NODE_AGENT = "node-agent"
POOL_LABEL = "pool"
FLASHSALE_TAINT = {"key": "dedicated", "value": "flashsale", "effect": "NoSchedule"}
SHOP_NAMESPACE = "shop"


@dataclass(frozen=True)
class NodePool:
    name: str
    size: int
    kubelet: str
    taints: tuple[dict[str, str], ...] = ()


DEFAULT_POOLS = (
    NodePool("shop", 3, KWOK),
    NodePool("flashsale", 3, NODE_AGENT, (FLASHSALE_TAINT,)),
    NodePool("system", 1, NODE_AGENT),
)

# The regular shop: it must keep running, untouched, while a sale happens next to it.
SHOP_DEPLOYMENTS = {"web": 3, "cart": 2, "checkout": 2}


def node_manifest(pool: NodePool, index: int) -> dict[str, Any]:
    name = f"{pool.name}-{index}"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                POOL_LABEL: pool.name,
                KUBELET_LABEL: pool.kubelet,
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": pool.kubelet,
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"taints": [dict(t) for t in pool.taints]},
    }


def pool_manifests(pools: tuple[NodePool, ...] = DEFAULT_POOLS) -> list[dict[str, Any]]:
    return [node_manifest(pool, i) for pool in pools for i in range(1, pool.size + 1)]


# What a platform pod (the operator, monitoring) needs to run as a real process on the system pool.
SYSTEM_PLACEMENT: dict[str, Any] = {"nodeSelector": {POOL_LABEL: "system"}}

# What a pod needs to run on the flashsale pool: select it and tolerate its taint.
FLASHSALE_PLACEMENT: dict[str, Any] = {
    "nodeSelector": {POOL_LABEL: "flashsale"},
    "tolerations": [{**FLASHSALE_TAINT, "operator": "Equal"}],
}


def deployment(
    name: str,
    replicas: int,
    containers: list[dict[str, Any]],
    pod_spec: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A plain Deployment whose pods carry `labels` (default app=<name>); `pod_spec` adds placement."""
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": containers, **(pod_spec or {})},
            },
        },
    }


def shop_deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": f"shop-{name}", "app.kubernetes.io/part-of": "shop"}
    manifest = deployment(
        f"shop-{name}",
        replicas,
        [{"name": name, "image": f"shop.example/{name}:1.0"}],
        {"nodeSelector": {POOL_LABEL: "shop"}},
        labels,
    )
    manifest["metadata"]["namespace"] = SHOP_NAMESPACE
    return manifest
