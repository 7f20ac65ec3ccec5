"""Project pods get their volumes, DNS files and credentials in a private mount namespace."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import httpx
import kubernetes
import pytest

from flashsale_dev.cluster import LocalCluster
from flashsale_dev.cluster.nodes import FLASHSALE_PLACEMENT
from flashsale_dev.waiting import wait_for

pytestmark = pytest.mark.cluster

PROBE = "flashsale/probe:dev"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def probe_container(name: str, port: int, mounts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "image": PROBE,
        "env": [{"name": "PORT", "value": str(port)}],
        "ports": [{"containerPort": port}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": port}, "periodSeconds": 1},
        "volumeMounts": mounts,
    }


def ask(ip: str, port: int, endpoint: str, **params: str) -> Any:
    answer = httpx.get(f"http://{ip}:{port}{endpoint}", params=params, timeout=10)
    answer.raise_for_status()
    return answer.json()


def read(ip: str, port: int, path: str) -> dict[str, str]:
    found: dict[str, str] = ask(ip, port, "/file", path=path)
    return found


def ready_pod(core: Any, namespace: str, name: str) -> Any:
    def probe() -> Any:
        pod = core.read_namespaced_pod(name, namespace)
        ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
        return pod if ready else None

    def describe() -> str:
        statuses = core.read_namespaced_pod(name, namespace).status.container_statuses or []
        return "; ".join(f"{s.name}: {s.state}" for s in statuses)

    return wait_for(probe, timeout=180, what=f"pod {name} Ready", describe=describe)


def default_service_account(core: Any, namespace: str) -> None:
    """The controller-manager creates it; a pod created before would be refused by admission."""
    wait_for(lambda: core.read_namespaced_service_account("default", namespace), timeout=60,
             what="the default ServiceAccount")  # fmt: skip


def host_view() -> dict[str, Any]:
    return {
        "resolv.conf": Path("/etc/resolv.conf").read_text(),
        "hosts": Path("/etc/hosts").read_text(),
        "/var/run": sorted(os.listdir("/var/run")),
        "mounts": Path("/proc/self/mountinfo").read_text(),
    }


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def files_pod() -> dict[str, Any]:
    reader_mounts = [
        {"name": "creds", "mountPath": "/etc/creds"},
        {"name": "settings", "mountPath": "/config"},
        {"name": "scratch", "mountPath": "/shared"},
        {"name": "podinfo", "mountPath": "/etc/podinfo"},
        {"name": "token", "mountPath": "/var/run/secrets/tokens"},
    ]
    volumes = [
        {"name": "creds", "secret": {"secretName": "creds"}},
        {"name": "settings", "configMap": {
            "name": "settings", "items": [{"key": "stock", "path": "counts/stock", "mode": 0o600}],
        }},
        {"name": "scratch", "emptyDir": {}},
        {"name": "podinfo", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
        ]}},
        {"name": "token", "projected": {"sources": [
            {"serviceAccountToken": {"audience": "flashsale", "expirationSeconds": 600, "path": "token"}},
        ]}},
    ]  # fmt: skip
    spec = {
        "containers": [
            probe_container("reader", 8080, reader_mounts),
            probe_container("writer", 8081, [{"name": "scratch", "mountPath": "/shared"}]),
        ],
        "volumes": volumes,
        **FLASHSALE_PLACEMENT,
    }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "files", "labels": {"app": "files"}},
            "spec": spec}  # fmt: skip


def test_a_pod_reads_its_volumes_and_the_host_is_left_untouched(
    cluster: LocalCluster, kube_api: Any, namespace: str
) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    before = host_view()
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "creds"}, "stringData": {"password": "s3cret"}}
    )
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "settings"}, "data": {"stock": "100", "ignored": "x"}}
    )
    default_service_account(core, namespace)
    core.create_namespaced_pod(namespace, files_pod())
    pod = ready_pod(core, namespace, "files")
    ip = pod.status.pod_ip

    assert read(ip, 8080, "/etc/creds/password") == {"content": "s3cret", "mode": "0644"}
    assert read(ip, 8080, "/config/counts/stock") == {"content": "100", "mode": "0600"}  # items, mode
    assert [n for n in ask(ip, 8080, "/ls", path="/config")["names"] if not n.startswith("..")] == ["counts"]
    httpx.put(
        f"http://{ip}:8081/file", params={"path": "/shared/hello"}, content=b"from writer"
    ).raise_for_status()
    assert read(ip, 8080, "/shared/hello")["content"] == "from writer"  # one emptyDir, two containers
    assert read(ip, 8080, "/etc/podinfo/labels")["content"] == 'app="files"'
    assert read(ip, 8080, "/etc/podinfo/name")["content"] == "files"
    claims = jwt_claims(read(ip, 8080, "/var/run/secrets/tokens/token")["content"])
    assert claims["aud"] == ["flashsale"]
    assert claims["kubernetes.io"]["pod"]["name"] == "files"
    # The ServiceAccount admission plugin's kube-api-access volume, mounted as it is.
    assert read(ip, 8080, f"{SA_DIR}/namespace")["content"] == namespace
    assert read(ip, 8080, f"{SA_DIR}/ca.crt")["content"] == cluster.pki.ca.cert.read_text()
    assert jwt_claims(read(ip, 8080, f"{SA_DIR}/token")["content"])["aud"]
    # DNS and hosts files of the pod's own, as the kubelet writes them.
    dns_ip = core.read_namespaced_service("kube-dns", "kube-system").spec.cluster_ip
    resolv = read(ip, 8081, "/etc/resolv.conf")["content"]
    assert f"search {namespace}.svc.cluster.local svc.cluster.local cluster.local" in resolv
    assert f"nameserver {dns_ip}\n" in resolv
    assert "options ndots:5" in resolv
    assert f"{ip}\tfiles\n" in read(ip, 8080, "/etc/hosts")["content"]
    assert ask(ip, 8080, "/hostname") == {"hostname": "files", "fqdn": "files"}  # its own UTS name
    env = ask(ip, 8080, "/env")
    master = core.read_namespaced_service("kubernetes", "default").spec.cluster_ip
    assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == (master, "443")
    assert env["KUBERNETES_PORT_443_TCP"] == f"tcp://{master}:443"

    core.patch_namespaced_secret("creds", namespace, {"stringData": {"password": "rotated"}})
    wait_for(lambda: read(ip, 8080, "/etc/creds/password")["content"] == "rotated", timeout=120,
             what="the Secret's update in the mounted file")  # fmt: skip
    assert host_view() == before  # while the pod runs, nothing of it shows on the host

    core.delete_namespaced_pod("files", namespace)
    wait_for(lambda: not core.list_namespaced_pod(namespace).items, timeout=120, what="the pod deleted")
    assert host_view() == before
    assert not (cluster.node_agent.dir / "kubelet-pods" / pod.metadata.uid).exists()


def test_a_missing_secret_keeps_the_container_waiting_until_it_exists(kube_api: Any, namespace: str) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    default_service_account(core, namespace)
    pod = files_pod()
    pod["spec"]["containers"] = pod["spec"]["containers"][:1]
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "settings"}, "data": {"stock": "1"}})
    core.create_namespaced_pod(namespace, pod)

    def waiting_reason() -> str | None:
        statuses = core.read_namespaced_pod("files", namespace).status.container_statuses or []
        waiting = statuses[0].state.waiting if statuses else None
        return f"{waiting.reason}: {waiting.message}" if waiting else None

    def config_error() -> str | None:
        reason = waiting_reason()
        return reason if reason and "CreateContainerConfigError" in reason else None

    reason = wait_for(config_error, timeout=120, what="CreateContainerConfigError")
    assert 'secret "creds" not found' in reason
    core.create_namespaced_secret(namespace, {"metadata": {"name": "creds"}, "stringData": {"password": "x"}})
    ready_pod(core, namespace, "files")
