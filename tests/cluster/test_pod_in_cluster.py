"""From inside a project pod, the cluster looks as it does on a real one: the apiserver through the
`kubernetes` Service with the pod's own ServiceAccount, and Services by their DNS names."""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx
import kubernetes
import pytest

from flashsale_dev.cluster import LocalCluster
from flashsale_dev.cluster.nodes import FLASHSALE_PLACEMENT, deployment
from flashsale_dev.cluster.rbac import pod_reader
from flashsale_dev.waiting import wait_for

pytestmark = pytest.mark.cluster

# Nothing local-only: the client finds the apiserver, the token and the CA where a real pod has them.
IN_CLUSTER = """
import json, os, kubernetes
kubernetes.config.load_incluster_config()
config = kubernetes.client.Configuration.get_default_copy()
core = kubernetes.client.CoreV1Api()
namespace = open("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read()
out = {"host": config.host, "verify": config.verify_ssl,
       "pods": sorted(p.metadata.name for p in core.list_namespaced_pod(namespace).items)}
for name, call in [("secrets", lambda: core.list_namespaced_secret(namespace)),
                   ("all-pods", lambda: core.list_pod_for_all_namespaces())]:
    try:
        call()
        out[name] = 200
    except kubernetes.client.ApiException as error:
        out[name] = error.status
# kopf's own in-cluster login: https://kubernetes.default.svc (cluster DNS), the token and ca.crt.
import kopf, ssl, urllib.request
info = kopf.login_with_service_account(settings=kopf.OperatorSettings())
request = urllib.request.Request(f"{info.server}/api/v1/namespaces/{namespace}/pods",
                                 headers={"Authorization": f"Bearer {info.token}"})
trust = ssl.create_default_context(cafile=info.ca_path)
out["kopf"] = [info.server, urllib.request.urlopen(request, context=trust, timeout=10).status]
print(json.dumps(out), flush=True)
"""


def pod(name: str, container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    body = {"containers": [container], **FLASHSALE_PLACEMENT, **spec}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": body}


def phase(core: Any, namespace: str, name: str, wanted: str) -> Any:
    return wait_for(
        lambda: (p := core.read_namespaced_pod(name, namespace)).status.phase == wanted and p,
        timeout=180,
        what=f"pod {name} {wanted}",
    )


def test_a_pod_logs_in_with_its_service_account_and_gets_exactly_its_roles_rights(
    cluster: LocalCluster, kube_api: Any, namespace: str
) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    pod_reader(kube_api, namespace)
    script = {"name": "client", "image": "flashsale/probe:dev", "command": [sys.executable, "-c", IN_CLUSTER]}
    core.create_namespaced_pod(
        namespace, pod("in-cluster", script, serviceAccountName="reader", restartPolicy="Never")
    )
    phase(core, namespace, "in-cluster", "Succeeded")

    log = cluster.node_agent.dir / "pods" / f"{namespace}_in-cluster_client.log"
    seen = json.loads(log.read_text().splitlines()[-1])
    master = core.read_namespaced_service("kubernetes", "default").spec.cluster_ip
    assert seen["host"] == f"https://{master}:443"
    assert seen["verify"] is True  # the apiserver's certificate was checked against ca.crt
    assert seen["pods"] == ["in-cluster"]
    assert (seen["secrets"], seen["all-pods"]) == (403, 403)
    assert seen["kopf"] == ["https://kubernetes.default.svc", 200]


def test_a_service_answers_by_its_dns_names_from_every_ready_replica(kube_api: Any, namespace: str) -> None:
    core, apps = kubernetes.client.CoreV1Api(kube_api), kubernetes.client.AppsV1Api(kube_api)
    echo = {
        "name": "echo",
        "image": "flashsale/echo:dev",
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1},
    }
    apps.create_namespaced_deployment(namespace, deployment("web", 2, [echo], FLASHSALE_PLACEMENT))
    core.create_namespaced_service(namespace, {
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
    })  # fmt: skip
    ready = {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1}
    client = {"name": "client", "image": "flashsale/probe:dev", "readinessProbe": ready}
    core.create_namespaced_pod(namespace, pod("client", client))
    client_ip = wait_for(
        lambda: core.read_namespaced_pod("client", namespace).status.pod_ip, timeout=180, what="client IP"
    )

    def replicas_answering(url: str) -> set[str]:
        seen: set[str] = set()

        def both() -> bool:
            answer = httpx.get(f"http://{client_ip}:8080/get", params={"url": url}, timeout=15).json()
            seen.add(json.loads(answer["body"])["pod"])
            return len(seen) == 2

        wait_for(both, timeout=180, what=f"both replicas answering {url}", describe=lambda: str(seen))
        return seen

    full = replicas_answering(f"http://web.{namespace}.svc.cluster.local/")
    short = replicas_answering("http://web/")
    names = {p.metadata.name for p in core.list_namespaced_pod(namespace, label_selector="app=web").items}
    assert full == short == names

    # Scaled to 0, the Service refuses at once (a refused connection, not a timeout); scaled back, it
    # answers again.
    apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 0}})

    def refused() -> bool:
        answer = httpx.get(f"http://{client_ip}:8080/get", params={"url": "http://web/"}, timeout=15).json()
        return "refused" in str(answer.get("error", "")).lower()

    wait_for(refused, timeout=180, what="the Service with no Ready replica refusing connections")
    apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 2}})
    assert len(replicas_answering("http://web/")) == 2
