"""RealNode: one kubelet + containerd + kube-proxy node in its own network namespace.

Start order: undo what dead runs left, take a slot (addresses, names), then - each recorded in the
node's journal before it is made - the data directory, the network namespace, the veth pair, the
host route to the pod range, the cgroup root in every hierarchy, the node's share of the host-wide
ledger (sysctls kubelet sets); then the processes: the API relay, containerd (images imported),
kubelet and kube-proxy, all but the relay inside the namespace. Stop undoes the journal.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from flashsale_dev.cluster.kubeconfig import write_cert_kubeconfig
from flashsale_dev.cluster.nodes import KUBELET_LABEL, POOL_LABEL
from flashsale_dev.cluster.pki import ClusterPKI
from flashsale_dev.cluster.real_node import api_relay, configs, host, host_ledger, image_names
from flashsale_dev.cluster.real_node.addresses import (
    NodeAddresses,
    foreign_routes,
    read_routes,
    reserve_slot,
    slot_lock,
)
from flashsale_dev.cluster.real_node.journal import Journal
from flashsale_dev.cluster.real_node.undo import cleanup_stale, journal_path, undo_journal
from flashsale_dev.paths import require_binary, tool_dir
from flashsale_dev.ports import unlock_and_remove
from flashsale_dev.process import ManagedProcess
from flashsale_dev.waiting import wait_for

REAL_KUBELET = "kubelet"  # the value of flashsale.dev/kubelet on real nodes
API_RELAY_PORT = 6443  # inside the node's namespace, which has its own ports


@dataclass(frozen=True)
class RealNodeSpec:
    name: str
    pool: str
    taints: tuple[dict[str, str], ...] = ()
    labels: dict[str, str] = field(default_factory=dict)

    def node_labels(self) -> dict[str, str]:
        return {POOL_LABEL: self.pool, KUBELET_LABEL: REAL_KUBELET, **self.labels}


class RealNode:
    def __init__(
        self, spec: RealNodeSpec, *, root: Path, pki: ClusterPKI, apiserver_port: int,
        images: Sequence[Path], sandbox_image: str,
    ) -> None:  # fmt: skip
        self.spec = spec
        self.dir = root / spec.name
        self.pki = pki
        self.apiserver_port = apiserver_port
        self.images = list(images)
        self.sandbox_image = sandbox_image
        self.addresses: NodeAddresses | None = None
        self.layout = configs.NodeLayout(self.dir, self.dir / "run")  # replaced once the slot is known
        self._slot_fd: int | None = None
        self._journal: Journal | None = None
        self.processes: dict[str, ManagedProcess] = {}

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        cleanup_stale()
        self.addresses, self._slot_fd = reserve_slot()
        self.layout = configs.NodeLayout(self.dir, self.addresses.run_dir)
        self._journal = Journal(journal_path(self.addresses.slot))
        undo_journal(self._journal)  # empty, unless a dead run's appeared since cleanup_stale()
        try:
            self._make_host_side(self.addresses, self._journal)
            self._write_configs(self.addresses)
            self._start_processes(self.addresses)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Processes gracefully first (kubelet, kube-proxy, then containerd), then the journal."""
        for name in ("kubelet", "kube-proxy", "containerd", "api-relay"):
            if name in self.processes:
                self.processes[name].stop()
        if self._journal is not None:
            undo_journal(self._journal)
        if self._slot_fd is not None and self.addresses is not None:
            unlock_and_remove(slot_lock(self.addresses.slot), self._slot_fd)
            self._slot_fd = None

    # --- host side ----------------------------------------------------------------------------

    def _make_host_side(self, a: NodeAddresses, journal: Journal) -> None:
        clashes = foreign_routes(read_routes(host.run("ip", "-j", "route")))
        if clashes:
            raise RuntimeError(f"routes on this machine overlap the real nodes' ranges: {clashes}")
        for directory in (self.dir, a.run_dir):
            journal.record("directory", path=str(directory))
            directory.mkdir(parents=True, exist_ok=True)
        journal.record("host_ledger", slot=a.slot)  # before anything creates a path it lists
        host_ledger.join(a.slot)
        journal.record("netns", name=a.netns)
        host.run("ip", "netns", "add", a.netns)
        journal.record("link", name=a.host_link)
        host.run("ip", "link", "add", a.host_link, "type", "veth", "peer", "name", "eth0", "netns", a.netns)
        host.run("ip", "addr", "add", f"{a.host_ip}/{a.link_prefix_len}", "dev", a.host_link)
        host.run("ip", "link", "set", a.host_link, "up")
        inside = ("ip", "-n", a.netns)
        host.run(*inside, "link", "set", "lo", "up")
        host.run(*inside, "addr", "add", f"{a.node_ip}/{a.link_prefix_len}", "dev", "eth0")
        host.run(*inside, "link", "set", "eth0", "up")
        host.run(*inside, "route", "add", "default", "via", a.host_ip)
        journal.record("route", destination=a.pod_cidr, device=a.host_link)
        host.run("ip", "route", "add", a.pod_cidr, "via", a.node_ip, "dev", a.host_link)
        journal.record("cgroup", root=a.cgroup_root)
        host.create_cgroup(a.cgroup_root)

    # --- files --------------------------------------------------------------------------------

    def _write_configs(self, a: NodeAddresses) -> None:
        layout, name = self.layout, self.spec.name
        for directory in (
            layout.containerd_dir,
            layout.cni_conf_dir,
            layout.kubelet_dir,
            layout.pod_logs_dir,
        ):
            directory.mkdir(parents=True, exist_ok=True)
        layout.containerd_config.write_text(configs.containerd_config(layout, self.sandbox_image))
        (layout.cni_conf_dir / "10-flashsale.conflist").write_text(
            configs.cni_config_text(layout, a.pod_cidr)
        )
        server = f"https://127.0.0.1:{API_RELAY_PORT}"  # the relay, inside the namespace
        kubelet_id = self.pki.client_cert(f"system:node:{name}", ("system:nodes",))
        write_cert_kubeconfig(
            self._kubeconfig("kubelet"), server, self.pki.ca.cert, kubelet_id, kubelet_id.cert.stem
        )
        proxy_id = self.pki.client_cert("system:kube-proxy")
        write_cert_kubeconfig(
            self._kubeconfig("kube-proxy"), server, self.pki.ca.cert, proxy_id, "system:kube-proxy"
        )
        serving = self.pki.serving_cert(f"kubelet-{name}", dns=[name], ips=[a.node_ip])
        kubelet = configs.kubelet_config(
            layout, node_ip=a.node_ip, cgroup_root=a.cgroup_root, client_ca=self.pki.ca.cert,
            serving=(serving.cert, serving.key), taints=[dict(t) for t in self.spec.taints],
        )  # fmt: skip
        layout.kubelet_config.write_text(yaml.safe_dump(kubelet, sort_keys=False))
        proxy = configs.kube_proxy_config(
            kubeconfig=self._kubeconfig("kube-proxy"), node_ip=a.node_ip, cluster_cidr=a.pod_cidr
        )
        layout.kube_proxy_config.write_text(yaml.safe_dump(proxy, sort_keys=False))

    def _kubeconfig(self, user: str) -> Path:
        return self.dir / f"{user}.kubeconfig"

    # --- processes ----------------------------------------------------------------------------

    def _start_processes(self, a: NodeAddresses) -> None:
        netns = str(host.netns_path(a.netns))
        # Run as a plain script: it needs only the standard library (not the package's imports).
        ports = [str(API_RELAY_PORT), str(self.apiserver_port)]
        relay = [sys.executable, "-I", api_relay.__file__, netns, *ports]
        self._spawn("api-relay", relay, inside=False)
        containerd = require_binary(tool_dir("containerd") / "containerd", "run `make setup-cluster`")
        self._spawn("containerd", [str(containerd), f"--config={self.layout.containerd_config}"])
        wait_for(
            self.layout.containerd_socket.exists, timeout=60, what=f"{self.spec.name}: containerd socket"
        )
        for archive in self.images:
            self.ctr("images", "import", "--snapshotter=overlayfs", str(archive))
        for short, full in image_names.missing_twins(self.ctr("images", "ls", "-q").split()).items():
            self.ctr("images", "tag", short, full)
        k8s = tool_dir("k8s")
        labels = ",".join(f"{k}={v}" for k, v in self.spec.node_labels().items())
        self._spawn("kubelet", [
            str(require_binary(k8s / "kubelet", "run `make setup-cluster`")),
            f"--config={self.layout.kubelet_config}", f"--kubeconfig={self._kubeconfig('kubelet')}",
            f"--root-dir={self.layout.kubelet_dir}", f"--cert-dir={self.layout.kubelet_dir / 'pki'}",
            f"--hostname-override={self.spec.name}", f"--node-ip={a.node_ip}", f"--node-labels={labels}",
        ])  # fmt: skip
        self._spawn("kube-proxy", [
            str(require_binary(k8s / "kube-proxy", "run `make setup-cluster`")),
            f"--config={self.layout.kube_proxy_config}", f"--hostname-override={self.spec.name}",
        ])  # fmt: skip
        healthz = f"http://{a.node_ip}:{configs.KUBELET_HEALTHZ_PORT}/healthz"
        wait_for(lambda: _answers(healthz), timeout=120, what=f"{self.spec.name}: kubelet healthz")

    def _spawn(self, name: str, argv: list[str], *, inside: bool = True) -> None:
        assert self.addresses is not None
        assert self._journal is not None
        command = host.ns_exec(self.addresses.netns, argv) if inside else argv
        process = ManagedProcess(name, command, self.dir / f"{name}.log", env=_tool_env())
        process.start()
        assert process.pid is not None
        # A pid exists only once spawned; until recorded, a process is found by the netns recorded
        # before it (the relay, outside it, dies with its parent through PR_SET_PDEATHSIG).
        self._journal.record("process", name=name, pid=process.pid, start_time=host.start_time(process.pid))
        self.processes[name] = process

    def ctr(self, *args: str) -> str:
        ctr = str(tool_dir("containerd") / "ctr")
        return host.run(ctr, f"--address={self.layout.containerd_socket}", "--namespace=k8s.io", *args)

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def _tool_env() -> dict[str, str]:
    """containerd finds its shim on PATH; kubelet and kube-proxy find iptables, mount, nsenter."""
    path = f"{tool_dir('containerd')}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return {"PATH": path, "HOME": "/root", "LANG": "C.UTF-8"}


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
