"""A second cluster beside the session's: its own Service range, proxy, DNS and LoadBalancer edge
work as well, and stopping it leaves none of its network processes behind."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes
import pytest

from flashsale_dev.cluster import LocalCluster
from flashsale_dev.cluster.nodes import FLASHSALE_PLACEMENT, FLASHSALE_TAINT, NODE_AGENT, NodePool, deployment
from flashsale_dev.dns_query import query_a
from flashsale_dev.ports import PortReservations
from flashsale_dev.process import is_running, processes_mentioning
from flashsale_dev.waiting import wait_for

pytestmark = pytest.mark.cluster

# A small second cluster: one node of the pool that really runs pods is enough here.
POOLS = (NodePool("flashsale", 1, NODE_AGENT, (FLASHSALE_TAINT,)),)
ECHO = {
    "name": "echo",
    "image": "flashsale/echo:dev",
    "ports": [{"name": "http", "containerPort": 8080}],
    "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1},
}


@pytest.fixture
def second_cluster() -> Iterator[LocalCluster]:
    root = Path(tempfile.mkdtemp(prefix="flashsale-cluster2-"))
    ports = PortReservations()
    local = LocalCluster(root, ports, pools=POOLS)
    try:
        local.prepare()
        local.start()
        yield local
    finally:
        local.stop()
        ports.release()
        shutil.rmtree(root, ignore_errors=True)


def descendants(pid: int) -> set[int]:
    """Live processes below `pid` (nginx's workers name no path of ours in their command line)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def test_a_second_cluster_has_its_own_working_network_and_leaves_nothing_when_stopped(
    cluster: LocalCluster, second_cluster: LocalCluster
) -> None:
    other = second_cluster
    assert not other.services.network.overlaps(cluster.services.network)
    with other.api_client() as api:
        core, apps = kubernetes.client.CoreV1Api(api), kubernetes.client.AppsV1Api(api)
        core.create_namespace({"metadata": {"name": "two"}})
        apps.create_namespaced_deployment("two", deployment("echo", 1, [ECHO], FLASHSALE_PLACEMENT))
        ports = [{"port": 80, "targetPort": "http"}]
        spec: dict[str, Any] = {"selector": {"app": "echo"}, "ports": ports, "type": "LoadBalancer"}
        created = core.create_namespaced_service("two", {"metadata": {"name": "echo"}, "spec": spec})
        ip = created.spec.cluster_ip
        assert ip in {str(a) for a in other.services.network}

        name = "echo.two.svc.cluster.local"
        wait_for(
            lambda: query_a(other.coredns.address, name).addresses == (ip,),
            timeout=60,
            what=f"{name} -> {ip}",
        )
        assert query_a(cluster.coredns.address, name).addresses == ()  # the first cluster has no such name
        wait_for(lambda: httpx.get(f"http://{ip}/", timeout=5).json()["namespace"] == "two", timeout=120,
                 what="the ClusterIP answering")  # fmt: skip

        def ingress() -> str | None:
            found = core.read_namespaced_service("echo", "two").status.load_balancer.ingress or []
            return found[0].ip if found else None

        lb = wait_for(ingress, timeout=60, what="a LoadBalancer address")
        wait_for(lambda: httpx.get(f"http://{lb}/", timeout=5).json()["namespace"] == "two", timeout=120,
                 what="the LoadBalancer answering")  # fmt: skip

    network = [other.service_proxy, other.coredns, other.lb_edge]
    pids = {c.process.pid for c in network}
    assert all(pid and is_running(pid) for pid in pids)
    workers = descendants(other.lb_edge.process.pid or 0)
    assert len(workers) >= 2, "nginx's master and a worker"

    other.stop()
    leftovers = {pid for pid in pids | workers if pid and is_running(pid)}
    assert leftovers == set(), f"network processes left: {leftovers}"
    assert processes_mentioning(str(other.root)) == []
