"""The local cluster is a real Kubernetes: scheduler, controllers, garbage collector, RBAC, kubectl."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes.client import ApiException

from flashsale_dev.cluster import LocalCluster
from flashsale_dev.cluster.kubeconfig import write_token_kubeconfig
from flashsale_dev.cluster.nodes import FLASHSALE_PLACEMENT, POOL_LABEL, deployment
from flashsale_dev.cluster.rbac import pod_reader
from flashsale_dev.waiting import wait_for


def web(name: str, replicas: int, pod_spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Deployment of a simulated (non-project) image; `pod_spec` adds placement."""
    return deployment(name, replicas, [{"name": "main", "image": "shop.example/web:1.0"}], pod_spec)


def pods_of(core: Any, namespace: str, app: str) -> list[Any]:
    return list(core.list_namespaced_pod(namespace, label_selector=f"app={app}").items)


def ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def wait_ready_pods(core: Any, namespace: str, app: str, count: int) -> list[Any]:
    """Wait until exactly `count` pods of `app` are scheduled and Ready; return them."""

    def placed() -> list[Any] | None:
        pods = [p for p in pods_of(core, namespace, app) if p.spec.node_name and ready(p)]
        return pods if len(pods) == count else None

    return wait_for(placed, timeout=120, what=f"{count} ready pods of {app}")


def node_pools(core: Any) -> dict[str, str]:
    return {node.metadata.name: node.metadata.labels[POOL_LABEL] for node in core.list_node().items}


def test_a_deployments_pods_are_scheduled_and_become_ready(kube_api: Any, namespace: str) -> None:
    core, apps = kubernetes.client.CoreV1Api(kube_api), kubernetes.client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(namespace, web("web", 3))

    pods = wait_ready_pods(core, namespace, "web", 3)
    assert all(pod.spec.node_name for pod in pods)
    wait_for(
        lambda: (
            apps.read_namespaced_deployment(  # the Deployment controller sees them too
                "web", namespace
            ).status.available_replicas
            == 3
        ),
        timeout=120,
        what="3 available replicas",
    )


def test_only_pods_with_the_flashsale_toleration_and_selector_land_on_the_flashsale_pool(
    kube_api: Any, namespace: str
) -> None:
    core, apps = kubernetes.client.CoreV1Api(kube_api), kubernetes.client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(namespace, web("sale", 4, FLASHSALE_PLACEMENT))
    apps.create_namespaced_deployment(namespace, web("regular", 6))
    apps.create_namespaced_deployment(  # asks for the pool but does not tolerate its taint
        namespace, web("intruder", 1, {"nodeSelector": {POOL_LABEL: "flashsale"}})
    )
    pools = node_pools(core)

    sale = wait_ready_pods(core, namespace, "sale", 4)
    regular = wait_ready_pods(core, namespace, "regular", 6)
    assert {pools[p.spec.node_name] for p in sale} == {"flashsale"}
    # Untolerating pods go anywhere else: the shop's pool or the untainted system pool.
    assert "flashsale" not in {pools[p.spec.node_name] for p in regular}

    intruder = wait_for(
        lambda: next((c for p in pods_of(core, namespace, "intruder") for c in (p.status.conditions or [])
                      if c.type == "PodScheduled" and c.reason == "Unschedulable"), None),
        timeout=120, what="the intruder reported Unschedulable",
    )  # fmt: skip
    assert "taint" in intruder.message
    # Across the whole cluster (the regular shop included), nothing else sits on the flashsale pool.
    for pod in core.list_pod_for_all_namespaces().items:
        if pod.spec.node_name and pools[pod.spec.node_name] == "flashsale":
            tolerated = {(t.key, t.value, t.effect) for t in (pod.spec.tolerations or [])}
            assert ("dedicated", "flashsale", "NoSchedule") in tolerated, pod.metadata.name


def test_deleting_an_owner_cascades_to_its_children_through_the_garbage_collector(
    kube_api: Any, namespace: str
) -> None:
    core, apps = kubernetes.client.CoreV1Api(kube_api), kubernetes.client.AppsV1Api(kube_api)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    reference = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid,
                 "controller": True, "blockOwnerDeletion": True}  # fmt: skip
    for i in range(3):
        core.create_namespaced_config_map(
            namespace, {"metadata": {"name": f"child-{i}", "ownerReferences": [reference]}}
        )
    apps.create_namespaced_deployment(namespace, web("web", 2))
    wait_for(lambda: len(pods_of(core, namespace, "web")) == 2, timeout=120, what="2 pods")

    core.delete_namespaced_config_map("owner", namespace)
    apps.delete_namespaced_deployment("web", namespace)

    def config_maps() -> set[str]:
        return {cm.metadata.name for cm in core.list_namespaced_config_map(namespace).items}

    wait_for(lambda: not config_maps() & {"child-0", "child-1", "child-2"}, timeout=120,
             what="children collected", describe=lambda: str(config_maps()))  # fmt: skip
    wait_for(lambda: not apps.list_namespaced_replica_set(namespace).items, timeout=120,
             what="ReplicaSet collected")  # fmt: skip
    wait_for(lambda: not pods_of(core, namespace, "web"), timeout=120, what="pods collected")


def test_rbac_denies_a_service_account_what_its_role_does_not_grant(
    cluster: LocalCluster, kube_api: Any, namespace: str, tmp_path: Path
) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    pod_reader(kube_api, namespace)
    token = core.create_namespaced_service_account_token(
        "reader", namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    kubeconfig = write_token_kubeconfig(
        tmp_path / "reader", cluster.server, cluster.pki.ca.cert, token, "reader"
    )

    with kubernetes.config.new_client_from_config(config_file=str(kubeconfig)) as reader_api:
        reader = kubernetes.client.CoreV1Api(reader_api)
        wait_for(lambda: reader.list_namespaced_pod(namespace) is not None, timeout=60,
                 what="the binding to take effect")  # fmt: skip
        with pytest.raises(ApiException) as denied:
            reader.list_namespaced_secret(namespace)
        assert denied.value.status == 403
        with pytest.raises(ApiException) as denied:
            reader.create_namespaced_config_map(namespace, {"metadata": {"name": "nope"}})
        assert denied.value.status == 403
        with pytest.raises(ApiException) as denied:
            reader.list_pod_for_all_namespaces()  # the Role is namespaced: no cluster-wide reads
        assert denied.value.status == 403


def test_kubectl_apply_and_delete_work_against_the_cluster(
    cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    manifest = tmp_path / "app.yaml"
    manifest.write_text(yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"stock": "100"}},
        web("web", 2),
    ]))  # fmt: skip
    applied = cluster.kubectl("apply", "-n", namespace, "-f", str(manifest))
    assert "configmap/settings created" in applied
    assert "deployment.apps/web created" in applied
    assert (
        cluster.kubectl("get", "configmap", "settings", "-n", namespace, "-o", "jsonpath={.data.stock}")
        == "100"
    )
    cluster.kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=120s")

    deleted = cluster.kubectl("delete", "-n", namespace, "-f", str(manifest), "--wait=true", "--timeout=120s")
    assert 'configmap "settings" deleted' in deleted
    remaining = cluster.kubectl("get", "configmap,deployment", "-n", namespace, "-o", "name")
    assert "settings" not in remaining
    assert "deployment.apps/web" not in remaining


def test_the_regular_shop_runs_on_its_own_pool(kube_api: Any) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    pools = node_pools(core)
    wait_for(lambda: len([p for p in core.list_namespaced_pod("shop").items if ready(p)]) == 7,
             timeout=120, what="the 7 shop pods ready")  # fmt: skip
    assert {pools[p.spec.node_name] for p in core.list_namespaced_pod("shop").items} == {"shop"}
