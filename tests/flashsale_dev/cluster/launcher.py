"""LocalCluster: brings up the control plane in order, registers the node pools, starts the shop.

Order matters: etcd, apiserver (PKI first; then the kube-dns Service, whose address pods read),
the controller-manager (it creates default ServiceAccounts, runs Deployments and the garbage
collector), the scheduler, the network (nginx edge, service proxy, CoreDNS: network.py), kwok and
the node agent; the nodes are then created and awaited Ready, and the regular shop deployed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes

from flashsale_dev.cluster.control_plane import ApiServer, ControllerManager, Etcd, Kwok, Scheduler
from flashsale_dev.cluster.kubeconfig import write_cert_kubeconfig
from flashsale_dev.cluster.network import CoreDNS, LoadBalancerEdge, ServiceProxyComponent, create_dns_service
from flashsale_dev.cluster.nodes import (
    DEFAULT_POOLS,
    KUBELET_LABEL,
    NODE_AGENT,
    SHOP_DEPLOYMENTS,
    SHOP_NAMESPACE,
    NodePool,
    pool_manifests,
    shop_deployment,
)
from flashsale_dev.cluster.pki import ClusterPKI
from flashsale_dev.cluster.service_range import ServiceRange
from flashsale_dev.components.base import Component
from flashsale_dev.paths import tool_dir
from flashsale_dev.ports import PortReservations
from flashsale_dev.process import ManagedProcess
from flashsale_dev.waiting import wait_for


class NodeAgent(Component):
    """Plays kubelet for nodes labelled flashsale.dev/kubelet=node-agent (see the node_agent package)."""

    name = "node-agent"

    def __init__(self, root: Path, ports: PortReservations, kubeconfig: Path) -> None:
        super().__init__(root, ports)
        self.kubeconfig = kubeconfig

    def _make_process(self) -> ManagedProcess:
        argv = [
            sys.executable, "-m", "flashsale_dev.cluster.node_agent",
            f"--kubeconfig={self.kubeconfig}",
            f"--node-selector={KUBELET_LABEL}={NODE_AGENT}",
            f"--state-dir={self.dir}",
            f"--health-port={self.port}",
        ]  # fmt: skip
        return ManagedProcess(self.name, argv, self.log_path)

    def _ready(self) -> bool:
        return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200


class LocalCluster:
    def __init__(
        self, root: Path, ports: PortReservations, *, pools: tuple[NodePool, ...] = DEFAULT_POOLS
    ) -> None:
        self.root = root
        self.pools = pools
        self.pki = ClusterPKI(root / "pki")
        self.services = ServiceRange()  # this cluster's own /16 of 127.0.0.0/8 for ClusterIPs
        self.etcd = Etcd(root, ports)
        self.apiserver = ApiServer(root, ports, self.pki, self.etcd, self.services)
        self.kubeconfig = root / "admin.kubeconfig"
        self.controller_manager = ControllerManager(
            root, ports, root / "controller-manager.kubeconfig", self.pki, self.services
        )
        self.scheduler = Scheduler(root, ports, root / "scheduler.kubeconfig")
        self.kwok = Kwok(root, ports, root / "kwok.kubeconfig")
        self.node_agent = NodeAgent(root, ports, root / "node-agent.kubeconfig")
        self.lb_edge = LoadBalancerEdge(root, ports)
        self.service_proxy = ServiceProxyComponent(
            root, ports, root / "service-proxy.kubeconfig", self.lb_edge
        )
        self.coredns = CoreDNS(
            root, ports, root / "coredns.kubeconfig", self.services, self.service_proxy.hosts_file
        )

    @property
    def components(self) -> list[Component]:
        kubelets = {pool.kubelet for pool in self.pools}
        agents = [self.kwok] + ([self.node_agent] if NODE_AGENT in kubelets else [])
        network = [self.lb_edge, self.service_proxy, self.coredns]  # before any kubelet runs a pod
        return [self.etcd, self.apiserver, self.controller_manager, self.scheduler, *network, *agents]

    @property
    def server(self) -> str:
        return self.apiserver.url

    def exports(self) -> dict[str, str]:
        # The built kubectl first on PATH, so `kubectl get fsale` is the cluster's own version.
        return {"KUBECONFIG": str(self.kubeconfig), "PATH": f"{tool_dir('k8s')}:$PATH"}

    def prepare(self) -> None:
        """The PKI and every identity's kubeconfig; safe in a worker thread."""
        self.pki.create_authority()
        identities = {
            self.kubeconfig: ("admin", ("system:masters",)),
            self.controller_manager.kubeconfig: ("system:kube-controller-manager", ()),
            self.scheduler.kubeconfig: ("system:kube-scheduler", ()),
            # Both kubelet stand-ins write node and pod status for many nodes: cluster admins.
            self.kwok.kubeconfig: ("flashsale-kwok", ("system:masters",)),
            self.node_agent.kubeconfig: ("flashsale-node-agent", ("system:masters",)),
            # Both read every Service and Pod; the proxy also writes LoadBalancer status.
            self.service_proxy.kubeconfig: ("flashsale-service-proxy", ("system:masters",)),
            self.coredns.kubeconfig: ("flashsale-coredns", ("system:masters",)),
        }
        for path, (user, groups) in identities.items():
            client = self.pki.client_cert(user, groups)
            write_cert_kubeconfig(path, self.server, self.pki.ca.cert, client, user)

    def start(self) -> None:
        """Bring the control plane up, in order. Call prepare() first."""
        for component in self.components:
            component.start()
            if component is self.apiserver:
                with self.api_client() as api:  # pods read the DNS address from it, from the first
                    create_dns_service(api, self.services)
        self._register_nodes()
        self._start_shop()

    def stop(self) -> None:
        for component in reversed(self.components):
            component.stop()
        self.services.release()

    def api_client(self) -> kubernetes.client.ApiClient:
        return kubernetes.config.new_client_from_config(config_file=str(self.kubeconfig))

    def kubectl(self, *args: str, input_text: str | None = None, check: bool = True) -> str:
        """Run the built kubectl as cluster admin; returns stdout, raises with stderr on failure."""
        done = subprocess.run(
            [str(tool_dir("k8s") / "kubectl"), *args],
            env={**os.environ, "KUBECONFIG": str(self.kubeconfig)},
            input=input_text,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed ({done.returncode}): {done.stderr}")
        return done.stdout

    def _register_nodes(self) -> None:
        with self.api_client() as api:
            core = kubernetes.client.CoreV1Api(api)
            for node in pool_manifests(self.pools):
                _create_or_keep(core.create_node, node)
            expected = {node["metadata"]["name"] for node in pool_manifests(self.pools)}
            wait_for(
                lambda: expected <= _ready_nodes(core),
                timeout=120,
                what=f"nodes {sorted(expected)} Ready",
                describe=lambda: f"ready: {sorted(_ready_nodes(core))}",
            )

    def _start_shop(self) -> None:
        with self.api_client() as api:
            core = kubernetes.client.CoreV1Api(api)
            apps = kubernetes.client.AppsV1Api(api)
            _create_or_keep(core.create_namespace, {"metadata": {"name": SHOP_NAMESPACE}})
            for name, replicas in SHOP_DEPLOYMENTS.items():
                _create_or_keep(
                    lambda body: apps.create_namespaced_deployment(SHOP_NAMESPACE, body),
                    shop_deployment(name, replicas),
                )


@contextlib.contextmanager
def throwaway_cluster(prefix: str, pools: tuple[NodePool, ...] = DEFAULT_POOLS) -> Iterator[LocalCluster]:
    """A cluster of its own in a temporary directory and ports, stopped and removed on the way out."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    ports = PortReservations()
    local = LocalCluster(root, ports, pools=pools)
    try:
        local.prepare()
        local.start()
        yield local
    finally:
        local.stop()
        ports.release()
        shutil.rmtree(root, ignore_errors=True)


def _ready_nodes(core: kubernetes.client.CoreV1Api) -> set[str]:
    ready = set()
    for node in core.list_node().items:
        conditions = node.status.conditions or []
        if any(c.type == "Ready" and c.status == "True" for c in conditions):
            ready.add(node.metadata.name)
    return ready


def _create_or_keep(create: Any, body: dict[str, Any]) -> None:
    try:
        create(body)
    except kubernetes.client.ApiException as error:
        if error.status != 409:
            raise
