"""PersistentVolumeClaims: the default StorageClass's local-path provisioner gives each claim a
directory, the node agent mounts it, the data outlives the pod and goes with the claim."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import kubernetes
import pytest

from flashsale_dev.cluster import LocalCluster
from flashsale_dev.cluster.nodes import FLASHSALE_PLACEMENT
from flashsale_dev.waiting import wait_for

pytestmark = pytest.mark.cluster


def stateful_set(name: str) -> dict[str, Any]:
    probe = {
        "name": "store",
        "image": "flashsale/probe:dev",
        "ports": [{"containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    claim = {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Mi"}}},
    }  # no storageClassName: the default class's
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "serviceName": name,
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [probe], **FLASHSALE_PLACEMENT},
            },
            "volumeClaimTemplates": [claim],
        },
    }


def ready_pod(core: Any, namespace: str, name: str, not_uid: str = "") -> Any:
    def probe() -> Any:
        pod = core.read_namespaced_pod(name, namespace)
        ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
        return pod if ready and pod.metadata.uid != not_uid else None

    return wait_for(probe, timeout=180, what=f"pod {name} Ready")


def test_a_stateful_sets_claim_is_bound_keeps_its_data_and_goes_with_the_claim(
    cluster: LocalCluster, kube_api: Any, namespace: str
) -> None:
    core, apps = kubernetes.client.CoreV1Api(kube_api), kubernetes.client.AppsV1Api(kube_api)
    apps.create_namespaced_stateful_set(namespace, stateful_set("store"))
    first = ready_pod(core, namespace, "store-0")
    claim = core.read_namespaced_persistent_volume_claim("data-store-0", namespace)
    assert claim.status.phase == "Bound"
    assert claim.spec.storage_class_name == "standard"
    volume = core.read_persistent_volume(claim.spec.volume_name)
    directory = Path(volume.spec.host_path.path)
    assert directory.is_dir()
    assert directory.parent == cluster.node_agent.dir / "local-path"
    httpx.put(f"http://{first.status.pod_ip}:8080/file", params={"path": "/data/kept"}, content=b"v1",
              timeout=10).raise_for_status()  # fmt: skip
    assert (directory / "kept").read_text() == "v1"

    core.delete_namespaced_pod("store-0", namespace)
    second = ready_pod(core, namespace, "store-0", not_uid=first.metadata.uid)
    answer = httpx.get(f"http://{second.status.pod_ip}:8080/file", params={"path": "/data/kept"}, timeout=10)
    assert answer.json()["content"] == "v1"

    apps.delete_namespaced_stateful_set("store", namespace)
    wait_for(lambda: not core.list_namespaced_pod(namespace).items, timeout=120, what="the pod gone")
    core.delete_namespaced_persistent_volume_claim("data-store-0", namespace)
    wait_for(lambda: not directory.exists(), timeout=120, what=f"{directory} removed")

    def volume_gone() -> bool:
        try:
            core.read_persistent_volume(claim.spec.volume_name)
        except kubernetes.client.ApiException as error:
            return bool(error.status == 404)
        return False

    wait_for(volume_gone, timeout=120, what="the PersistentVolume deleted")
