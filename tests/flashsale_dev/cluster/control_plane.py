"""The control plane's processes: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok.

Each is a platform Component (fixed ports, restartable), bound to 127.0.0.1. Flags follow the notes
in shared/notes/kubernetes-control-plane.md; what matters is commented where it is set.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx

from flashsale_dev.cluster.nodes import KUBELET_LABEL, KWOK
from flashsale_dev.cluster.pki import ClusterPKI
from flashsale_dev.cluster.service_range import ServiceRange
from flashsale_dev.components.base import Component
from flashsale_dev.paths import require_binary, tool_dir
from flashsale_dev.ports import PortReservations
from flashsale_dev.process import ManagedProcess

KWOK_POD_CIDR = "10.244.0.0/16"  # kwok's fake pod IPs: never a traffic target
DISABLED_CONTROLLERS = "*,-endpoints-controller,-endpointslice-controller,-endpointslice-mirroring-controller"


def _k8s_binary(name: str) -> str:
    return str(require_binary(tool_dir("k8s") / name, "run `make setup` (builds the cluster binaries)"))


class Etcd(Component):
    name = "etcd"

    def __init__(self, root: Path, ports: PortReservations) -> None:
        super().__init__(root, ports)
        self.peer_port = ports.take()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _make_process(self) -> ManagedProcess:
        peer = f"http://127.0.0.1:{self.peer_port}"
        argv = [
            str(require_binary(tool_dir("etcd") / "etcd", "run `make setup`")),
            "--name=local", f"--data-dir={self.dir / 'data'}",
            f"--listen-client-urls={self.url}", f"--advertise-client-urls={self.url}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=local={peer}",
            "--unsafe-no-fsync",  # a throwaway test cluster: speed over crash safety
            "--log-level=warn",
        ]  # fmt: skip
        return ManagedProcess(self.name, argv, self.log_path)

    def _ready(self) -> bool:
        return bool(httpx.get(f"{self.url}/health", timeout=2).json().get("health") == "true")


class ApiServer(Component):
    name = "kube-apiserver"
    ready_timeout = 120.0

    def __init__(
        self, root: Path, ports: PortReservations, pki: ClusterPKI, etcd: Etcd, services: ServiceRange
    ) -> None:
        super().__init__(root, ports)
        self.pki = pki
        self.etcd = etcd
        self.services = services

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _make_process(self) -> ManagedProcess:
        serving = self.pki.serving_cert(
            "kube-apiserver",
            dns=["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "kubernetes.default.svc.cluster.local"],
            # The `kubernetes` Service's ClusterIP: the service proxy forwards it here unchanged.
            ips=["127.0.0.1", self.services.address(1)],
        )  # fmt: skip
        # For logs, exec and port-forward on real kubelet nodes (real_node/): a client certificate
        # their kubelets accept, and their InternalIP (their Hostname resolves nowhere).
        kubelet_client = self.pki.client_cert("kube-apiserver-kubelet-client")
        argv = [
            _k8s_binary("kube-apiserver"),
            f"--etcd-servers={self.etcd.url}",
            "--bind-address=127.0.0.1", f"--secure-port={self.port}",
            # An offline machine has no default route; with a loopback advertise address the
            # default endpoint reconciler is refused, hence "none".
            "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
            f"--tls-cert-file={serving.cert}", f"--tls-private-key-file={serving.key}",
            f"--client-ca-file={self.pki.ca.cert}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={self.pki.service_account_pub}",
            f"--service-account-signing-key-file={self.pki.service_account_key}",
            f"--service-cluster-ip-range={self.services.cidr}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            "--profiling=false",
            f"--cert-dir={self.dir / 'certs'}",
            f"--kubelet-client-certificate={kubelet_client.cert}",
            f"--kubelet-client-key={kubelet_client.key}",
            "--kubelet-preferred-address-types=InternalIP",
        ]  # fmt: skip
        return ManagedProcess(self.name, argv, self.log_path)

    def _ready(self) -> bool:
        trust = ssl.create_default_context(cafile=str(self.pki.ca.cert))
        answer = httpx.get(f"{self.url}/readyz", verify=trust, timeout=5)
        return answer.status_code == 200 and answer.text == "ok"


class _KubeComponent(Component):
    """A controller that talks to the apiserver through its own kubeconfig and serves /healthz."""

    binary: str

    def __init__(self, root: Path, ports: PortReservations, kubeconfig: Path) -> None:
        super().__init__(root, ports)
        self.kubeconfig = kubeconfig

    def _common_flags(self) -> list[str]:
        return [
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={self.port}",
            f"--cert-dir={self.dir / 'certs'}",
            "--leader-elect=false",
        ]  # fmt: skip

    def _ready(self) -> bool:
        # Their serving certs are self-signed into cert-dir; /healthz is open to anyone.
        answer = httpx.get(f"https://127.0.0.1:{self.port}/healthz", verify=False, timeout=2)  # noqa: S501
        return answer.status_code == 200


class ControllerManager(_KubeComponent):
    name = "kube-controller-manager"

    def __init__(
        self, root: Path, ports: PortReservations, kubeconfig: Path, pki: ClusterPKI, services: ServiceRange
    ) -> None:
        super().__init__(root, ports, kubeconfig)
        self.pki = pki
        self.services = services

    def _make_process(self) -> ManagedProcess:
        argv = [
            _k8s_binary("kube-controller-manager"), *self._common_flags(),
            f"--root-ca-file={self.pki.ca.cert}",
            f"--service-account-private-key-file={self.pki.service_account_key}",
            "--use-service-account-credentials=true",
            f"--cluster-signing-cert-file={self.pki.ca.cert}",
            f"--cluster-signing-key-file={self.pki.ca.key}",
            f"--service-cluster-ip-range={self.services.cidr}",
            # EndpointSlices and Endpoints refuse the pods' loopback addresses: these controllers
            # could only log failures. The service proxy computes endpoints itself (endpoints.py).
            f"--controllers={DISABLED_CONTROLLERS}",
        ]  # fmt: skip
        return ManagedProcess(self.name, argv, self.log_path)


class Scheduler(_KubeComponent):
    name = "kube-scheduler"

    def _make_process(self) -> ManagedProcess:
        return ManagedProcess(
            self.name, [_k8s_binary("kube-scheduler"), *self._common_flags()], self.log_path
        )


class Kwok(Component):
    """Plays kubelet for the nodes labelled flashsale.dev/kubelet=kwok: nodes Ready, pods Running."""

    name = "kwok"

    def __init__(self, root: Path, ports: PortReservations, kubeconfig: Path) -> None:
        super().__init__(root, ports)
        self.kubeconfig = kubeconfig

    def _prepare(self) -> None:
        # The standalone binary has no default stages (only kwokctl injects them): assemble them
        # from the copies the build took out of kwok's own module.
        stages = sorted((tool_dir("kwok") / "stages").glob("*.yaml"))
        if not stages:
            raise FileNotFoundError("kwok stages missing: run `make setup`")
        (self.dir / "kwok.yaml").write_text("\n---\n".join(s.read_text() for s in stages))

    def _make_process(self) -> ManagedProcess:
        argv = [
            str(require_binary(tool_dir("kwok") / "kwok", "run `make setup`")),
            f"--kubeconfig={self.kubeconfig}",
            f"--config={self.dir / 'kwok.yaml'}",
            f"--manage-nodes-with-label-selector={KUBELET_LABEL}={KWOK}",
            f"--cidr={KWOK_POD_CIDR}",
            "--node-lease-duration-seconds=40",
            f"--server-address=127.0.0.1:{self.port}",
        ]
        return ManagedProcess(self.name, argv, self.log_path)

    def _ready(self) -> bool:
        return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200
