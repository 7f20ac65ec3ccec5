"""The configuration files of one real node (pure: paths and addresses in, text or dicts out).

The settings that matter on this machine (see the shared real-node note): containerd's CRI with
restrict_oom_score_adj (root lacks CAP_SYS_RESOURCE here), cgroupfs instead of systemd, overlayfs,
a pinned sandbox image (there is no registry to pull one from); kubelet with failCgroupV1: false
(cgroups are v1 hybrid here) and failSwapOn: false; kube-proxy kept off 127.0.0.0/8.
Every path a component would default to outside the node's directory is set inside it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNC = "/usr/sbin/runc"
CNI_BIN_DIR = "/usr/lib/cni"
KUBELET_PORT = 10250
KUBELET_HEALTHZ_PORT = 10248
KUBE_PROXY_HEALTHZ_PORT = 10256


@dataclass(frozen=True)
class NodeLayout:
    """The node's own directories and files: data under `root`, sockets (and kubelet's root dir,
    which holds sockets too) under the short `run` dir - a unix socket path has at most 107 bytes,
    and a test's tmp dir alone can take 70."""

    root: Path
    run: Path

    @property
    def containerd_dir(self) -> Path:
        return self.root / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.run / "containerd.sock"

    @property
    def containerd_config(self) -> Path:
        return self.containerd_dir / "config.toml"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def cni_data_dir(self) -> Path:
        return self.root / "cni" / "ipam"

    @property
    def kubelet_dir(self) -> Path:
        return self.run / "kubelet"

    @property
    def kubelet_config(self) -> Path:
        return self.root / "kubelet.yaml"

    @property
    def kube_proxy_config(self) -> Path:
        return self.root / "kube-proxy.yaml"

    @property
    def pod_logs_dir(self) -> Path:
        return self.root / "pod-logs"


def containerd_config(layout: NodeLayout, sandbox_image: str) -> str:
    d = layout.containerd_dir
    cri_runtime = "plugins.'io.containerd.cri.v1.runtime'"
    runc = f"{cri_runtime}.containerd.runtimes.runc"
    return f"""version = 3
root = "{d / "root"}"
state = "{d / "state"}"
# NRI would listen on /var/run/nri/nri.sock, one socket for every containerd on the machine.
disabled_plugins = ["io.containerd.nri.v1.nri"]

[grpc]
  address = "{layout.containerd_socket}"

[ttrpc]
  address = "{layout.containerd_socket}.ttrpc"

[plugins.'io.containerd.internal.v1.opt']
  path = "{d / "opt"}"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{sandbox_image}"

[{cri_runtime}]
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  cdi_spec_dirs = ["{d / "cdi"}"]
  [{cri_runtime}.containerd]
    default_runtime_name = "runc"
  [{runc}]
    runtime_type = "io.containerd.runc.v2"
  [{runc}.options]
    SystemdCgroup = false
    BinaryName = "{RUNC}"
    Root = "{d / "runc"}"
  [{cri_runtime}.cni]
    bin_dirs = ["{CNI_BIN_DIR}"]
    conf_dir = "{layout.cni_conf_dir}"

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
"""


def cni_config(layout: NodeLayout, pod_cidr: str) -> dict[str, Any]:
    """A bridge with the node's pod range; masquerade for traffic leaving the pod range."""
    return {
        "cniVersion": "1.0.0",
        "name": "flashsale-pods",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(layout.cni_data_dir),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def cni_config_text(layout: NodeLayout, pod_cidr: str) -> str:
    return json.dumps(cni_config(layout, pod_cidr), indent=2)


def kubelet_config(
    layout: NodeLayout, *, node_ip: str, cgroup_root: str, client_ca: Path, serving: tuple[Path, Path],
    taints: list[dict[str, str]],
) -> dict[str, Any]:  # fmt: skip
    cert, key = serving
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": node_ip,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": node_ip,
        "healthzPort": KUBELET_HEALTHZ_PORT,
        # Only holders of a certificate from the cluster's CA (the API server's kubelet client) get in.
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(client_ca)},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "tlsCertFile": str(cert),
        "tlsPrivateKeyFile": str(key),
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": cgroup_root,
        "cgroupsPerQOS": True,
        "failCgroupV1": False,
        "failSwapOn": False,
        "podLogsDir": str(layout.pod_logs_dir),
        "volumePluginDir": str(layout.kubelet_dir / "volume-plugins"),
        "registerNode": True,
        "registerWithTaints": taints,
        "maxPods": 30,
        # A shared, busy disk: evict only when it is really full, never collect the imported images.
        "evictionHard": {"memory.available": "50Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
    }


def kube_proxy_config(*, kubeconfig: Path, node_ip: str, cluster_cidr: str) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",
        "clusterCIDR": cluster_cidr,
        "bindAddress": node_ip,
        "healthzBindAddress": f"{node_ip}:{KUBE_PROXY_HEALTHZ_PORT}",
        "metricsBindAddress": "127.0.0.1:10249",
        "nodePortAddresses": [f"{node_ip}/32"],
        "iptables": {"localhostNodePorts": False},
        # 0 = leave the conntrack table size and timeouts alone: nf_conntrack_max is host-wide.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }
