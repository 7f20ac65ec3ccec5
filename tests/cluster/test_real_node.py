"""A real node: kubelet + containerd + runc + CNI + kube-proxy in a network namespace of its own joins
a throwaway control plane, runs a pod with a real pod IP, serves logs and exec, and leaves nothing
of itself on the host once stopped - also after its runner was SIGKILLed."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flashsale_dev.cluster import LocalCluster
from flashsale_dev.cluster.launcher import throwaway_cluster
from flashsale_dev.cluster.nodes import FLASHSALE_TAINT, KWOK, NodePool
from flashsale_dev.cluster.real_node import RealNode, RealNodeSpec, host, host_ledger
from flashsale_dev.cluster.real_node.addresses import LINK_PREFIX, NODE_NETWORK, POD_NETWORK
from flashsale_dev.cluster.real_node.undo import cleanup_stale
from flashsale_dev.paths import cache_dir
from flashsale_dev.process import processes_mentioning
from flashsale_dev.waiting import wait_for
from flashsale_sale import __version__

pytestmark = pytest.mark.cluster

SANDBOX_IMAGE = f"docker.io/flashsale/pause:{__version__}"
# The test container: the product image (`make images`), its python3 printing a line and answering
# TCP connections with it.
GREETING = "hello from a real node"
PORT = 8080
SERVE = f"""
import socket
print({GREETING!r}, flush=True)
server = socket.create_server(("", {PORT}))
while True:
    connection, _ = server.accept()
    connection.sendall({GREETING!r}.encode() + b"\\n")
    connection.close()
"""
CONTAINER = {"name": "main", "image": f"flashsale/gateway:{__version__}", "imagePullPolicy": "IfNotPresent",
             "command": ["python3", "-c", SERVE]}  # fmt: skip
EXEC = ["python3", "-c", "print('exec works')"]


def node_images() -> list[Path]:
    """The OCI archives imported into the node: `make images`' pause (the sandbox) and product image."""
    archives = [cache_dir() / "images" / f"flashsale-pause-{__version__}.oci.tar",
                cache_dir() / "images" / f"flashsale-{__version__}.oci.tar"]  # fmt: skip
    missing = [str(a) for a in archives if not a.exists()]
    assert not missing, f"run `make images` (make setup does): {missing}"
    return archives


def _missing_prerequisite() -> str | None:
    if os.geteuid() != 0:
        return "real nodes need root (network namespaces, cgroups, mounts)"
    for tool in ("nsenter", "ip", "iptables"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    for path in ("/usr/sbin/runc", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap"):
        if not Path(path).exists():
            return f"{path} is missing: run `make setup-system` (runc, containernetworking-plugins)"
    return None


def host_footprint() -> dict[str, Any]:
    """What the nodes could change on the host, as comparable values."""
    return {
        "netns": sorted(p.name for p in Path("/run/netns").iterdir()) if Path("/run/netns").exists() else [],
        "links": sorted(link["ifname"] for link in json.loads(host.run("ip", "-j", "link", "show"))),
        "routes": host.run("ip", "route", "show"),
        "iptables_lines": len(host.run("iptables-save").splitlines()),
        "sysctls": {name: host.read_sysctl(name) for name in host_ledger.KUBELET_SYSCTLS},
        "host_paths": {str(p): p.exists() for p in host_ledger.HOST_PATHS},
        "cgroups": sorted(str(p) for m in host.cgroup_mounts() for p in m.iterdir() if p.is_dir()),
        "run_dirs": sorted(str(p) for p in Path("/run").glob("flashsale-node-*")),
        "host_path_mounts": [str(m) for p in host_ledger.HOST_PATHS for m in host.mounts_at_or_under(p)],
        "shims": processes_mentioning("containerd-shim-runc-v2"),
    }  # fmt: skip


def leftovers(root: Path) -> dict[str, Any]:
    """Anything of the nodes under `root` still alive or mounted."""
    return {"processes": processes_mentioning(str(root)), "mounts": host.mounts_under(root)}


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    reason = _missing_prerequisite()
    if reason:
        pytest.skip(reason)
    with throwaway_cluster("flashsale-real-node-", pools=(NodePool("shop", 1, KWOK),)) as local:
        yield local


def real_node(cluster: LocalCluster, root: Path, images: list[Path], name: str) -> RealNode:
    spec = RealNodeSpec(name, pool="flashsale", taints=(FLASHSALE_TAINT,))
    return RealNode(spec, root=root, pki=cluster.pki, apiserver_port=cluster.apiserver.port,
                    images=images, sandbox_image=SANDBOX_IMAGE)  # fmt: skip


def node_object(cluster: LocalCluster, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(cluster.kubectl("get", "node", name, "-o", "json"))
    return found


def is_ready(node: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", []))


def test_a_real_node_joins_runs_a_pod_and_leaves_the_host_as_it_was(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    images = node_images()
    before = host_footprint()
    root = tmp_path / "nodes"
    node = real_node(cluster, root, images, "real-1")
    try:
        node.start()
        wait_for(lambda: is_ready(node_object(cluster, "real-1")), timeout=180, what="real-1 Ready",
                 describe=lambda: node.log_tail("kubelet"))  # fmt: skip

        addresses = node.addresses
        assert addresses is not None
        info = node_object(cluster, "real-1")["status"]
        assert info["nodeInfo"]["kubeletVersion"].startswith("v1.36.")
        assert info["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://2.")
        internal = [a["address"] for a in info["addresses"] if a["type"] == "InternalIP"]
        assert internal == [addresses.node_ip]
        assert ipaddress.ip_address(addresses.node_ip) in NODE_NETWORK
        wide = cluster.kubectl("get", "nodes", "real-1", "-o", "wide")
        for shown in ("v1.36.", "containerd://2.", addresses.node_ip):
            assert shown in wide

        running = run_pod(cluster, "on-real-node", "real-1")
        pod_ip = ipaddress.ip_address(running["status"]["podIP"])
        assert not pod_ip.is_loopback
        assert pod_ip in ipaddress.ip_network(addresses.pod_cidr)
        assert pod_ip in POD_NETWORK
        assert wait_for(lambda: GREETING in cluster.kubectl("logs", "on-real-node"), what="logs")
        assert cluster.kubectl("exec", "on-real-node", "--", *EXEC).strip() == "exec works"
        assert ask(str(pod_ip)) == GREETING  # the host reaches the pod through the node's route
    finally:
        node.stop()

    assert leftovers(root) == {"processes": [], "mounts": []}
    assert host_footprint() == before
    assert not any(p.name.startswith(LINK_PREFIX) for p in Path("/sys/class/net").iterdir())


def run_pod(cluster: LocalCluster, name: str, node_name: str) -> dict[str, Any]:
    """A pod pinned to `node_name` (scheduled there by the pool's selector and toleration), running."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
           "spec": {"containers": [CONTAINER], "nodeSelector": {"kubernetes.io/hostname": node_name},
                    "tolerations": [{**FLASHSALE_TAINT, "operator": "Equal"}],
                    "terminationGracePeriodSeconds": 2}}  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input_text=json.dumps(pod))
    running = wait_for(lambda: _running(cluster, name), timeout=180, what=f"pod {name} running",
                       describe=lambda: cluster.kubectl("describe", "pod", name))  # fmt: skip
    assert running["spec"]["nodeName"] == node_name
    return running


# A runner of its own, so the test can SIGKILL it as a killed `pytest` or `make up` would be killed.
RUNNER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from flashsale_dev.cluster.nodes import FLASHSALE_TAINT
    from flashsale_dev.cluster.pki import ClusterPKI
    from flashsale_dev.cluster.real_node import RealNode, RealNodeSpec
    root, pki, port, sandbox, *images = sys.argv[1:]
    spec = RealNodeSpec("real-2", pool="flashsale", taints=(FLASHSALE_TAINT,))
    RealNode(spec, root=Path(root), pki=ClusterPKI(Path(pki)), apiserver_port=int(port),
             images=[Path(i) for i in images], sandbox_image=sandbox).start()
    print("started", flush=True)
    while True:
        time.sleep(60)
""")


def test_what_a_killed_runner_left_is_undone_from_its_journal(cluster: LocalCluster, tmp_path: Path) -> None:
    images = node_images()
    before = host_footprint()
    root = tmp_path / "nodes"
    argv = [sys.executable, "-c", RUNNER, str(root), str(cluster.pki.dir), str(cluster.apiserver.port),
            SANDBOX_IMAGE, *map(str, images)]  # fmt: skip
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as runner:
        try:
            assert runner.stdout is not None
            assert runner.stdout.readline().strip() == "started"
            wait_for(lambda: is_ready(node_object(cluster, "real-2")), timeout=180, what="real-2 Ready")
            run_pod(cluster, "left-behind", "real-2")  # a shim and a container that outlive the runner
        finally:
            runner.send_signal(signal.SIGKILL)
    assert leftovers(root)["mounts"]  # the kill left the node's mounts (and more) behind...
    assert host_footprint() != before

    assert cleanup_stale()  # ...what the next start, or `make down`, undoes from the journal
    wait_for(lambda: leftovers(root) == {"processes": [], "mounts": []}, what="nothing of real-2 left",
             describe=lambda: str(leftovers(root)))  # fmt: skip
    assert host_footprint() == before


def ask(ip: str) -> str:
    with socket.create_connection((ip, PORT), timeout=10) as connection:
        return connection.makefile().readline().strip()


def _running(cluster: LocalCluster, name: str) -> dict[str, Any] | None:
    pod: dict[str, Any] = json.loads(cluster.kubectl("get", "pod", name, "-o", "json"))
    return pod if pod["status"].get("phase") == "Running" and pod["status"].get("podIP") else None
