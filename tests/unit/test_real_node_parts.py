"""The pure parts of a real node: its addresses, its journal's undo order, its configuration files,
the host tables it reads."""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path

import pytest

from flashsale_dev.cluster.real_node import configs, host, image_names
from flashsale_dev.cluster.real_node.addresses import NODE_NETWORK, POD_NETWORK, NodeAddresses, foreign_routes
from flashsale_dev.cluster.real_node.journal import Journal, undo_order

pytestmark = pytest.mark.unit


def test_each_slot_has_its_own_link_addresses_and_pod_range_inside_the_project_ranges() -> None:
    first, second = NodeAddresses(1), NodeAddresses(2)
    assert (first.host_ip, first.node_ip, first.pod_cidr) == ("198.51.100.5", "198.51.100.6", "10.246.1.0/24")
    assert (second.host_ip, second.node_ip, second.pod_cidr) == (
        "198.51.100.9",
        "198.51.100.10",
        "10.246.2.0/24",
    )
    last = NodeAddresses(63)
    assert ipaddress.ip_address(last.node_ip) in NODE_NETWORK
    assert ipaddress.IPv4Network(last.pod_cidr).subnet_of(POD_NETWORK)
    assert len(first.host_link) <= 15  # IFNAMSIZ
    assert first.netns != second.netns
    assert first.cgroup_root != second.cgroup_root


def test_only_other_peoples_routes_into_the_node_ranges_clash() -> None:
    routes = [
        {"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"},
        {"dst": "192.0.2.0/24", "dev": "eth0"},  # this machine's uplink: elsewhere
        {"dst": "10.246.1.0/24", "gateway": "198.51.100.6", "dev": "fsnode1"},  # our own node's
        {"dst": "10.0.0.0/8", "dev": "tun0"},  # someone's VPN covering the pod range
    ]
    assert foreign_routes(routes) == [{"dst": "10.0.0.0/8", "dev": "tun0"}]


def test_the_journal_is_undone_processes_first_then_newest_first(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "node.journal")
    for kind in ("directory", "netns", "link", "route", "cgroup"):
        journal.record(kind)
    journal.record("process", pid=1)
    journal.record("process", pid=2)
    with journal.path.open("a") as torn:  # a kill in the middle of a write
        torn.write('{"kind": "rou')
    kinds = [(e["kind"], e.get("pid")) for e in undo_order(journal.effects())]
    assert kinds == [("process", 2), ("process", 1), ("cgroup", None), ("route", None), ("link", None),
                     ("netns", None), ("directory", None)]  # fmt: skip


def test_containerd_keeps_everything_in_the_node_directory_with_the_settings_this_machine_needs() -> None:
    layout = configs.NodeLayout(Path("/data/real-1"), Path("/run/node-1"))
    config = tomllib.loads(configs.containerd_config(layout, "docker.io/flashsale/pause:0.1.0"))
    runtime = config["plugins"]["io.containerd.cri.v1.runtime"]
    assert runtime["restrict_oom_score_adj"] is True  # root lacks CAP_SYS_RESOURCE here
    assert runtime["netns_mounts_under_state_dir"] is True  # pod netns not in /run/netns
    runc = runtime["containerd"]["runtimes"]["runc"]["options"]
    assert runc["SystemdCgroup"] is False
    assert config["plugins"]["io.containerd.cri.v1.images"]["snapshotter"] == "overlayfs"
    assert config["plugins"]["io.containerd.cri.v1.images"]["pinned_images"]["sandbox"].endswith(
        "pause:0.1.0"
    )
    opt = config["plugins"]["io.containerd.internal.v1.opt"]["path"]
    paths = [config["root"], config["state"], config["grpc"]["address"], runc["Root"],
             runtime["cni"]["conf_dir"], *runtime["cdi_spec_dirs"], opt]  # fmt: skip
    assert all(p.startswith(("/data/real-1/", "/run/node-1/")) for p in paths)
    assert "io.containerd.nri.v1.nri" in config["disabled_plugins"]


def test_kubelet_runs_on_cgroup_v1_with_cgroupfs_and_admits_only_the_clusters_certificates() -> None:
    layout = configs.NodeLayout(Path("/data/real-1"), Path("/run/node-1"))
    kubelet = configs.kubelet_config(
        layout, node_ip="198.51.100.6", cgroup_root="/flashsale-node-1", client_ca=Path("/pki/ca.crt"),
        serving=(Path("/pki/k.crt"), Path("/pki/k.key")),
        taints=[{"key": "dedicated", "value": "x", "effect": "NoSchedule"}],
    )  # fmt: skip
    assert (kubelet["cgroupDriver"], kubelet["failCgroupV1"], kubelet["failSwapOn"]) == (
        "cgroupfs",
        False,
        False,
    )
    assert kubelet["cgroupRoot"] == "/flashsale-node-1"
    assert kubelet["authentication"]["anonymous"]["enabled"] is False
    assert kubelet["authentication"]["x509"]["clientCAFile"] == "/pki/ca.crt"
    assert kubelet["address"] == kubelet["healthzBindAddress"] == "198.51.100.6"
    assert kubelet["readOnlyPort"] == 0
    assert kubelet["podLogsDir"].startswith("/data/real-1/")
    assert kubelet["volumePluginDir"].startswith("/run/node-1/")
    assert kubelet["containerRuntimeEndpoint"] == "unix:///run/node-1/containerd.sock"


def test_kube_proxy_stays_off_loopback_and_leaves_host_wide_conntrack_settings_alone() -> None:
    proxy = configs.kube_proxy_config(
        kubeconfig=Path("/k"), node_ip="198.51.100.6", cluster_cidr="10.246.1.0/24"
    )
    assert proxy["mode"] == "iptables"
    assert proxy["nodePortAddresses"] == ["198.51.100.6/32"]
    assert proxy["iptables"]["localhostNodePorts"] is False
    assert proxy["conntrack"]["maxPerCore"] == 0


def test_the_pod_network_is_a_bridge_on_the_nodes_range_with_its_ipam_state_in_the_node() -> None:
    cni = configs.cni_config(configs.NodeLayout(Path("/data/real-1"), Path("/run/node-1")), "10.246.1.0/24")
    bridge, portmap = cni["plugins"]
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.246.1.0/24"}]]
    assert bridge["ipam"]["dataDir"].startswith("/data/real-1/")
    assert portmap["type"] == "portmap"


MOUNTINFO = """\
22 1 0:21 / / rw - ext4 /dev/vda rw
30 22 0:26 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
31 22 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
40 22 0:40 / /data/real-1/containerd/state/k8s.io/abc/rootfs rw - overlay overlay rw
41 22 0:41 / /data/real-1/kubelet/pods/p/volumes/with\\040space rw - tmpfs tmpfs rw
42 22 0:42 / /data/real-10/x rw - tmpfs tmpfs rw
"""


def test_the_host_tables_are_read_with_their_escapes() -> None:
    assert host.cgroup_mounts(MOUNTINFO) == [Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup/unified")]
    under = host.mounts_under(Path("/data/real-1"), MOUNTINFO)
    assert Path("/data/real-1/kubelet/pods/p/volumes/with space") in under
    assert Path("/data/real-10/x") not in under  # a sibling with the same prefix is not ours
    assert len(under) == 2


def test_short_image_names_get_the_normalized_twin_the_cri_looks_up() -> None:
    assert image_names.normalized("flashsale/pause:0.1.0") == "docker.io/flashsale/pause:0.1.0"
    assert image_names.normalized("busybox:1") == "docker.io/library/busybox:1"
    assert image_names.normalized("localhost:5000/x:1") == "localhost:5000/x:1"
    assert image_names.normalized("registry.example/x/y:1") == "registry.example/x/y:1"
    stored = [
        "flashsale/gateway:0.1.0",
        "docker.io/flashsale/pause:0.1.0",
        "flashsale/pause:0.1.0",
        "sha256:ab",
    ]
    assert image_names.missing_twins(stored) == {
        "flashsale/gateway:0.1.0": "docker.io/flashsale/gateway:0.1.0"
    }
