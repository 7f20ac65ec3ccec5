"""A second cluster beside the session's: its own Service range, proxy, DNS and LoadBalancer edge
work as well, and stopping it (a finished run's teardown) leaves no pod, proxy, CoreDNS or nginx
process and no mount behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flashsale_dev.cluster import LocalCluster
from flashsale_dev.cluster.launcher import throwaway_cluster
from flashsale_dev.cluster.nodes import FLASHSALE_TAINT, NODE_AGENT, NodePool
from flashsale_dev.dns_query import query_a
from flashsale_dev.leftovers import (
    address_reservations,
    assert_mounted_privately,
    cluster_network_processes,
    deploy_echo_app,
    mount_points,
    mounts_mentioning,
    still_running,
)
from flashsale_dev.process import processes_mentioning
from flashsale_dev.waiting import wait_for

pytestmark = pytest.mark.cluster

# A small second cluster: one node of the pool that really runs pods is enough here.
POOLS = (NodePool("flashsale", 1, NODE_AGENT, (FLASHSALE_TAINT,)),)


@pytest.fixture
def second_cluster() -> Iterator[LocalCluster]:
    with throwaway_cluster("flashsale-cluster2-", POOLS) as local:
        yield local


def test_a_second_cluster_has_its_own_working_network_and_leaves_nothing_when_stopped(
    cluster: LocalCluster, second_cluster: LocalCluster
) -> None:
    other = second_cluster
    assert not other.services.network.overlaps(cluster.services.network)
    mounts_before = mount_points()
    with other.api_client() as api:  # pods with volumes, a ClusterIP and a LoadBalancer, answering
        app = deploy_echo_app(api, "two", other.node_agent.dir)
    assert app.cluster_ip in {str(a) for a in other.services.network}
    name = "echo.two.svc.cluster.local"
    wait_for(
        lambda: query_a(other.coredns.address, name).addresses == (app.cluster_ip,),
        timeout=60,
        what=f"{name} -> {app.cluster_ip}",
    )
    assert query_a(cluster.coredns.address, name).addresses == ()  # the first cluster has no such name
    network = cluster_network_processes(other)
    assert_mounted_privately(app.pods, app.pod_dirs)

    other.stop()
    assert still_running(app.pods) == set(), "pods' processes left"
    assert still_running(network) == set(), "service proxy, CoreDNS or nginx processes left"
    assert processes_mentioning(str(other.root)) == []
    assert mounts_mentioning([str(other.root), *app.pod_dirs]) == []
    assert mount_points() == mounts_before
    assert address_reservations(app.addresses) == [], "address reservations left"
