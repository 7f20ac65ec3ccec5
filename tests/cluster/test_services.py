"""Services on the local cluster: ClusterIPs reached through the service proxy, names through CoreDNS,
LoadBalancer addresses through the nginx edge and its cache - all from the host, on real processes."""

from __future__ import annotations

import json
import socket
import ssl
from collections import Counter
from typing import Any

import httpx
import kubernetes
import pytest

from flashsale_dev.cluster import LocalCluster
from flashsale_dev.cluster.nodes import FLASHSALE_PLACEMENT, deployment
from flashsale_dev.dns_query import NXDOMAIN, query_a
from flashsale_dev.waiting import wait_for

pytestmark = pytest.mark.cluster

ECHO = "flashsale/echo:dev"
HTTP_READY = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1}
ECHO_CONTAINER = {
    "name": "echo",
    "image": ECHO,
    "ports": [{"name": "http", "containerPort": 8080}],
    "readinessProbe": HTTP_READY,
}


def echo_deployment(name: str, replicas: int) -> dict[str, Any]:
    return deployment(name, replicas, [dict(ECHO_CONTAINER)], FLASHSALE_PLACEMENT)


def service(name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("ports", [{"name": "http", "port": 80, "targetPort": "http"}])
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, **spec},
    }


def ready_pod_ips(core: Any, namespace: str, app: str) -> dict[str, str]:
    pods = core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
    ready = [
        p
        for p in pods
        if not p.metadata.deletion_timestamp  # a terminating pod may still report Ready
        and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    ]
    return {p.metadata.name: p.status.pod_ip for p in ready}


def wait_ready(core: Any, namespace: str, app: str, count: int) -> dict[str, str]:
    """Wait until exactly `count` pods of `app` are Ready; their names and addresses."""

    def probe() -> dict[str, str] | None:
        ready = ready_pod_ips(core, namespace, app)
        return ready if len(ready) == count else None

    return wait_for(probe, timeout=180, what=f"{count} pods of {app} Ready")


def answering_pods(url: str, expected: set[str], attempts: int = 8) -> set[str]:
    """Wait until a few requests to `url` (each on a new connection) are answered by all of `expected`."""

    def probe() -> set[str] | None:
        seen = {httpx.get(url, timeout=5).json()["pod"] for _ in range(attempts)}
        return seen if seen == expected else None

    return wait_for(probe, timeout=120, what=f"{sorted(expected)} answering {url}")


def refused(ip: str, port: int) -> type[BaseException] | None:
    """The error a connection gets at once (refused or reset), or None if it was served."""
    try:
        with socket.create_connection((ip, port), timeout=10) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return None if conn.recv(1) else ConnectionResetError
    except (ConnectionRefusedError, ConnectionResetError) as error:
        return type(error)


def scale(apps: Any, namespace: str, name: str, replicas: int) -> None:
    apps.patch_namespaced_deployment_scale(name, namespace, {"spec": {"replicas": replicas}})


def test_a_cluster_ip_reaches_every_ready_replica_and_refuses_at_once_when_there_is_none(
    cluster: LocalCluster, kube_api: Any, namespace: str
) -> None:
    core, apps = kubernetes.client.CoreV1Api(kube_api), kubernetes.client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(namespace, echo_deployment("echo", 2))
    ip = core.create_namespaced_service(namespace, service("echo")).spec.cluster_ip
    assert ip in {str(a) for a in cluster.services.network}, "a ClusterIP of this cluster's own range"

    pods = wait_ready(core, namespace, "echo", 2)
    answering_pods(f"http://{ip}/", set(pods))
    assert query_a(cluster.coredns.address, f"echo.{namespace}.svc.cluster.local").addresses == (ip,)

    scale(apps, namespace, "echo", 0)
    error = wait_for(lambda: refused(ip, 80), timeout=120, what="connections to the ClusterIP refused")
    assert error in (ConnectionRefusedError, ConnectionResetError)  # not a timeout: refused at once

    scale(apps, namespace, "echo", 2)
    pods = wait_ready(core, namespace, "echo", 2)
    answering_pods(f"http://{ip}/", set(pods))


def test_dns_answers_services_and_the_kubernetes_service_reaches_the_apiserver(
    cluster: LocalCluster, kube_api: Any, namespace: str
) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    ip = core.create_namespaced_service(namespace, service("named")).spec.cluster_ip
    name = f"named.{namespace}.svc.cluster.local"
    wait_for(
        lambda: query_a(cluster.coredns.address, name).addresses == (ip,), timeout=60, what=f"{name} -> {ip}"
    )
    assert query_a(cluster.coredns.address, f"missing.{namespace}.svc.cluster.local").rcode == NXDOMAIN
    dns_ip = core.read_namespaced_service("kube-dns", "kube-system").spec.cluster_ip
    assert dns_ip == cluster.coredns.address
    api_ip = core.read_namespaced_service("kubernetes", "default").spec.cluster_ip
    assert query_a(dns_ip, "kubernetes.default.svc.cluster.local").addresses == (api_ip,)

    # Through the proxy to the apiserver, verifying its certificate: the ClusterIP is one of its SANs.
    trust = ssl.create_default_context(cafile=str(cluster.pki.ca.cert))
    assert httpx.get(f"https://{api_ip}:443/readyz", verify=trust, timeout=10).text == "ok"


def test_a_headless_service_names_each_statefulset_pod_and_all_of_them(
    cluster: LocalCluster, kube_api: Any, namespace: str
) -> None:
    core, apps = kubernetes.client.CoreV1Api(kube_api), kubernetes.client.AppsV1Api(kube_api)
    core.create_namespaced_service(namespace, service("db", clusterIP="None"))
    template = {
        "metadata": {"labels": {"app": "db"}},
        "spec": {"containers": [dict(ECHO_CONTAINER)], **FLASHSALE_PLACEMENT},
    }
    spec = {
        "serviceName": "db",
        "replicas": 2,
        "selector": {"matchLabels": {"app": "db"}},
        "template": template,
    }
    apps.create_namespaced_stateful_set(namespace, {"metadata": {"name": "db"}, "spec": spec})
    pods = wait_ready(core, namespace, "db", 2)

    dns = cluster.coredns.address
    zone = f"db.{namespace}.svc.cluster.local"
    for pod, ip in pods.items():
        name = f"{pod}.{zone}"
        wait_for(lambda: query_a(dns, name).addresses == (ip,), timeout=60, what=f"{name} -> {ip}")  # noqa: B023
    assert query_a(dns, zone).addresses == tuple(sorted(pods.values()))


def pod_counts(pod_ips: dict[str, str], path: str) -> int:
    """How many requests for `path` the pods themselves saw."""
    return sum(httpx.get(f"http://{ip}:8080/count", timeout=5).json().get(path, 0) for ip in pod_ips.values())


def test_a_load_balancer_gets_an_address_serves_every_replica_caches_public_and_answers_503_json(
    cluster: LocalCluster, kube_api: Any, namespace: str
) -> None:
    core, apps = kubernetes.client.CoreV1Api(kube_api), kubernetes.client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(namespace, echo_deployment("web", 2))
    core.create_namespaced_service(namespace, service("web", type="LoadBalancer"))

    def ingress_ip() -> str | None:
        ingress = core.read_namespaced_service("web", namespace).status.load_balancer.ingress or []
        return ingress[0].ip if ingress else None

    lb = wait_for(ingress_ip, timeout=60, what="the LoadBalancer's ingress address")
    assert lb.startswith("127.")
    pods = wait_ready(core, namespace, "web", 2)
    answering_pods(f"http://{lb}/", set(pods))

    public = "/cache/public?max_age=60"
    first = httpx.get(f"http://{lb}{public}", timeout=10)
    second = httpx.get(f"http://{lb}{public}", timeout=10)
    assert (first.status_code, second.status_code) == (200, 200)
    assert [first.headers["x-cache-status"], second.headers["x-cache-status"]] == ["MISS", "HIT"]
    assert second.json() == first.json()
    assert pod_counts(pods, public) == 1  # the pod saw one request

    statuses = Counter(
        httpx.get(f"http://{lb}/cache/no-store", timeout=10).headers["x-cache-status"] for _ in range(3)
    )
    assert set(statuses) <= {"MISS", "BYPASS"}
    assert pod_counts(pods, "/cache/no-store") == 3  # every request reached a pod
    for uncached in ("/cache/private", "/cache/none"):
        for _ in range(2):
            assert httpx.get(f"http://{lb}{uncached}", timeout=10).headers["x-cache-status"] != "HIT"
        assert pod_counts(pods, uncached) == 2

    scale(apps, namespace, "web", 0)

    def unavailable() -> httpx.Response | None:
        answer = httpx.get(f"http://{lb}/", timeout=10)
        return answer if answer.status_code == 503 else None

    assert_unavailable(wait_for(unavailable, timeout=120, what="503 from the edge with no replica"))


def assert_unavailable(answer: httpx.Response) -> None:
    """The edge's own answer when nothing serves: the product's JSON error, never nginx's HTML page."""
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/json"
    assert int(answer.headers["retry-after"]) >= 1
    assert json.loads(answer.text)["error"] == "unavailable"


def test_the_edge_answers_503_json_when_every_endpoint_refuses(
    cluster: LocalCluster, kube_api: Any, namespace: str
) -> None:
    core, apps = kubernetes.client.CoreV1Api(kube_api), kubernetes.client.AppsV1Api(kube_api)
    # Another image than the project's is simulated: Ready with an address, and no process behind it.
    ghost = {"name": "ghost", "image": "nginx:1.27", "ports": [{"name": "http", "containerPort": 8080}]}
    apps.create_namespaced_deployment(namespace, deployment("ghost", 1, [ghost], FLASHSALE_PLACEMENT))
    core.create_namespaced_service(namespace, service("ghost", type="LoadBalancer"))
    wait_ready(core, namespace, "ghost", 1)

    def refusing_upstream() -> httpx.Response | None:
        ingress = core.read_namespaced_service("ghost", namespace).status.load_balancer.ingress or []
        answer = httpx.get(f"http://{ingress[0].ip}/", timeout=10)
        return answer if "answered" in answer.text else None  # the upstream was tried, and refused

    assert_unavailable(wait_for(refusing_upstream, timeout=120, what="503 from the edge, upstream refusing"))
