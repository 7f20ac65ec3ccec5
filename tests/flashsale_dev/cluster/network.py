"""The cluster's network components: the service proxy, CoreDNS and the LoadBalancer edge (nginx).

See docs/cluster.md ("Services and the proxy", "DNS", "LoadBalancer edge"). Each is a platform
Component the LocalCluster starts after the control plane and before the kubelets, so pods find
their Services and DNS from their first start.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import kubernetes

from flashsale_dev.cluster.dns import DNS_OFFSET, DNS_SERVICE, render_corefile
from flashsale_dev.cluster.edge_config import render_nginx_conf
from flashsale_dev.cluster.service_range import ServiceRange
from flashsale_dev.components.base import Component
from flashsale_dev.paths import require_binary, tool_dir
from flashsale_dev.ports import PortReservations
from flashsale_dev.process import ManagedProcess
from flashsale_dev.waiting import wait_for


class LoadBalancerEdge(Component):
    """One nginx per cluster: every LoadBalancer Service's address, with a CDN-like cache.

    nginx's workers are forked by its master and outlive it if it is SIGKILLed, and the kernel's
    parent-death signal reaches only our direct child. So nginx runs as pid 1 of a PID namespace
    of its own (`unshare --pid --kill-child`): when `unshare` dies, however it dies, the master is
    killed and the kernel kills everything else in the namespace. `unshare` ignores SIGTERM, so
    stopping is a SIGKILL too: nothing of an edge's state (a cache) is worth a graceful stop. The
    master's pid as seen from here goes to master.pid, where the LoadBalancer controller finds it
    to send SIGHUP (nginx's own pid file says 1: its pid inside the namespace).
    """

    name = "lb-edge"

    @property
    def master_pid_file(self) -> Path:
        return self.dir / "master.pid"

    def _prepare(self) -> None:
        for sub in ("tmp", "cache"):
            (self.dir / sub).mkdir(exist_ok=True)
        (self.dir / "nginx.conf").write_text(render_nginx_conf(self.dir, self.port, os.geteuid() == 0))
        sites = self.dir / "sites.conf"
        if not sites.exists():
            sites.write_text("# no LoadBalancer Service yet\n")

    def _make_process(self) -> ManagedProcess:
        argv = [
            str(require_binary("/usr/bin/unshare", "apt-get install util-linux")),
            "--pid", "--fork", "--kill-child=SIGKILL", "--",
            str(require_binary("/usr/sbin/nginx", "run `make setup` (Debian's nginx)")),
            "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"), "-e", str(self.dir / "error.log"),
            "-g", "daemon off;",  # a child of ours, stopped with the cluster
        ]  # fmt: skip
        return ManagedProcess(self.name, argv, self.log_path, stop_signal=signal.SIGKILL)

    def _ready(self) -> bool:
        return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200

    def await_ready(self) -> None:
        super().await_ready()
        leader = self.process.pid
        self.master_pid_file.write_text(Path(f"/proc/{leader}/task/{leader}/children").read_text().split()[0])


class ServiceProxyComponent(Component):
    """python -m flashsale_dev.cluster.service_proxy (see that package)."""

    name = "service-proxy"

    def __init__(self, root: Path, ports: PortReservations, kubeconfig: Path, edge: LoadBalancerEdge) -> None:
        super().__init__(root, ports)
        self.kubeconfig = kubeconfig
        self.edge = edge
        self.hosts_file = self.dir / "hosts"

    def _prepare(self) -> None:
        self.hosts_file.touch()  # CoreDNS may start before the first write

    def _make_process(self) -> ManagedProcess:
        argv = [
            sys.executable, "-m", "flashsale_dev.cluster.service_proxy",
            f"--kubeconfig={self.kubeconfig}", f"--hosts-file={self.hosts_file}",
            f"--health-port={self.port}", f"--edge-dir={self.edge.dir}",
        ]  # fmt: skip
        return ManagedProcess(self.name, argv, self.log_path)

    def _ready(self) -> bool:
        return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200


class CoreDNS(Component):
    """CoreDNS on port 53 of the kube-dns Service's ClusterIP, serving cluster.local."""

    name = "coredns"

    def __init__(
        self, root: Path, ports: PortReservations, kubeconfig: Path, services: ServiceRange, hosts_file: Path
    ) -> None:
        super().__init__(root, ports)
        self.kubeconfig = kubeconfig
        self.address = services.address(DNS_OFFSET)
        self.hosts_file = hosts_file

    def _prepare(self) -> None:
        corefile = render_corefile(self.address, self.kubeconfig, self.hosts_file, self.port)
        (self.dir / "Corefile").write_text(corefile)

    def _make_process(self) -> ManagedProcess:
        binary = require_binary(tool_dir("coredns") / "coredns", "run `make setup` (builds coredns)")
        return ManagedProcess(self.name, [str(binary), "-conf", str(self.dir / "Corefile")], self.log_path)

    def _ready(self) -> bool:
        # The ready plugin answers 200 once the kubernetes plugin has synced with the API.
        return httpx.get(f"http://127.0.0.1:{self.port}/ready", timeout=2).status_code == 200


def dns_service(services: ServiceRange) -> dict[str, Any]:
    """kube-system/kube-dns at a fixed ClusterIP, no selector: CoreDNS listens on that address itself."""
    namespace, name = DNS_SERVICE
    ports = [
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
    ]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": {"k8s-app": "kube-dns"}},
        "spec": {"clusterIP": services.address(DNS_OFFSET), "ports": ports},
    }


def create_dns_service(api: kubernetes.client.ApiClient, services: ServiceRange) -> None:
    """Create kube-dns (kept if present); kube-system appears just after the apiserver is ready."""
    core = kubernetes.client.CoreV1Api(api)

    def created() -> bool:
        try:
            core.create_namespaced_service(DNS_SERVICE[0], dns_service(services))
        except kubernetes.client.ApiException as error:
            if error.status != 409:
                raise
        return True

    wait_for(created, timeout=60, what="Service kube-system/kube-dns created")
