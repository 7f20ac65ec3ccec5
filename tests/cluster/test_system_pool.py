"""The system pool: platform pods of project images really run there; sale pods never land there."""

from __future__ import annotations

from typing import Any

import httpx
import kubernetes
import pytest

from flashsale_dev.cluster.nodes import FLASHSALE_PLACEMENT, POOL_LABEL, SYSTEM_PLACEMENT, deployment
from flashsale_dev.waiting import wait_for

pytestmark = pytest.mark.cluster

ECHO = {
    "name": "echo",
    "image": "flashsale/echo:dev",
    "ports": [{"name": "http", "containerPort": 8080}],
    "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1},
}


def ready_pods(core: Any, namespace: str, app: str, count: int) -> list[Any]:
    def probe() -> list[Any] | None:
        pods = core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
        ready = [
            p
            for p in pods
            if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        ]
        return ready if len(ready) == count else None

    return wait_for(probe, timeout=180, what=f"{count} ready pods of {app}")


def test_platform_pods_run_on_the_system_pool_and_sale_pods_never_do(kube_api: Any, namespace: str) -> None:
    core, apps = kubernetes.client.CoreV1Api(kube_api), kubernetes.client.AppsV1Api(kube_api)
    pools = {node.metadata.name: node.metadata.labels[POOL_LABEL] for node in core.list_node().items}
    apps.create_namespaced_deployment(namespace, deployment("operator", 1, [ECHO], SYSTEM_PLACEMENT))
    apps.create_namespaced_deployment(namespace, deployment("sale", 4, [ECHO], FLASHSALE_PLACEMENT))

    (platform,) = ready_pods(core, namespace, "operator", 1)
    assert pools[platform.spec.node_name] == "system"
    assert not platform.spec.tolerations or all(t.key != "dedicated" for t in platform.spec.tolerations)
    answer = httpx.get(f"http://{platform.status.pod_ip}:8080/", timeout=10).json()
    assert answer["pod"] == platform.metadata.name  # a real process, not a simulated container
    assert platform.status.container_statuses[0].container_id.startswith("flashsale-local://")

    sale = ready_pods(core, namespace, "sale", 4)
    assert {pools[p.spec.node_name] for p in sale} == {"flashsale"}
    for pod in core.list_pod_for_all_namespaces().items:  # the whole cluster: no sale pod on system
        if pod.spec.node_name and pools[pod.spec.node_name] == "system":
            assert (pod.spec.node_selector or {}).get(POOL_LABEL) != "flashsale", pod.metadata.name
