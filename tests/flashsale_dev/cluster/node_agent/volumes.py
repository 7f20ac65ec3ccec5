"""A pod's files on the node - /etc/hosts, /etc/resolv.conf, its volumes - and what each container mounts.

Layout, as the kubelet's /var/lib/kubelet/pods/<uid>/: `<state-dir>/kubelet-pods/<uid>/` holds
`etc-hosts`, `resolv.conf`, `volumes/<name>/` (emptyDir, and the configMap, secret, downwardAPI and
projected volumes written by atomic_writer) and `mnt-<container>/` (mount_ns.py's staging). It lives
as long as the pod (an emptyDir survives container restarts and agent restarts) and is removed with
it. PersistentVolumeClaims mount their bound PV's directory (see local_path.py), hostPath its path.

File volumes are written before a container starts and rewritten every SYNC_PERIOD by the sync thread
(the kubelet's sync loop), so Secret and ConfigMap updates and token refreshes show through the
bind mounts of running containers.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flashsale_dev.cluster.node_agent.atomic_writer import write_payload
from flashsale_dev.cluster.node_agent.dns_files import (
    ResolvConf,
    pod_resolv_conf,
    render_hosts,
    render_resolv_conf,
)
from flashsale_dev.cluster.node_agent.envvars import EnvError
from flashsale_dev.cluster.node_agent.tokens import PodIdentity, TokenCache
from flashsale_dev.cluster.node_agent.volume_payload import FILE_VOLUMES, volume_payload

log = logging.getLogger(__name__)

SYNC_PERIOD = 2.0  # seconds: the kubelet's is about a minute; tests should not wait that long
KUBELET_PODS = "kubelet-pods"
HOSTS, RESOLV = "/etc/hosts", "/etc/resolv.conf"

ReadObject = Callable[[str, str, str], Mapping[str, Any] | None]  # (kind, namespace, name)


def _host_path(volume: Mapping[str, Any]) -> Path:
    """A hostPath volume's path, created for the *OrCreate types as the kubelet does."""
    source = volume["hostPath"]
    path, kind = Path(source["path"]), source.get("type") or ""
    if kind == "DirectoryOrCreate":
        path.mkdir(parents=True, exist_ok=True)
    elif kind == "FileOrCreate" and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    if kind and not path.exists():
        raise EnvError(f"hostPath {path} does not exist (type {kind})")
    return path


class PodVolumes:
    def __init__(self, node: NodeVolumes, pod: Mapping[str, Any], ip: str) -> None:
        self._node = node
        self.pod = pod
        self.ip = ip
        self.dir = node.state_dir / KUBELET_PODS / pod["metadata"]["uid"]
        self._lock = threading.Lock()
        self._written: set[str] = set()  # file volumes written once: the sync thread keeps them current
        self.closed = False  # removed: nothing may write here again

    def mounts(self, container: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Write what `container` needs and return its bind mounts; EnvError while something is missing."""
        with self._lock:
            targets = {m.get("mountPath") for m in container.get("volumeMounts") or []}
            binds = []
            self.dir.mkdir(parents=True, exist_ok=True)
            if HOSTS not in targets:
                (self.dir / "etc-hosts").write_text(render_hosts(self.pod, self.ip))
                binds.append({"source": str(self.dir / "etc-hosts"), "target": HOSTS, "read_only": False})
            if RESOLV not in targets:
                conf = pod_resolv_conf(self.pod, self._cluster_dns(), self._node.host_resolv)
                (self.dir / "resolv.conf").write_text(render_resolv_conf(conf))
                binds.append({"source": str(self.dir / "resolv.conf"), "target": RESOLV, "read_only": False})
            volumes = {v["name"]: v for v in self.pod["spec"].get("volumes") or []}
            for mount in container.get("volumeMounts") or []:
                volume = volumes.get(mount.get("name"))
                if volume is None:
                    raise EnvError(f"volumeMount {mount.get('name')!r} names no volume of the pod")
                source, read_only = self._source(volume)
                if mount.get("subPath"):
                    if mount["subPath"].startswith("/") or ".." in mount["subPath"].split("/"):
                        raise EnvError(f"subPath {mount['subPath']!r} must be relative, without '..'")
                    source = source / mount["subPath"]
                    if "emptyDir" in volume or "hostPath" in volume:
                        source.mkdir(parents=True, exist_ok=True)  # the kubelet creates a missing subPath
                    source = source.resolve()  # through ..data: a subPath never sees updates, as in k8s
                binds.append({"source": str(source), "target": mount["mountPath"],
                              "read_only": read_only or bool(mount.get("readOnly"))})  # fmt: skip
            return binds

    def refresh(self) -> None:
        """Rewrite the file volumes from the API (sync thread); on an error the old files stay."""
        with self._lock:
            if self.closed:
                return
            volumes = {v["name"]: v for v in self.pod["spec"].get("volumes") or []}
            for name in sorted(self._written):
                try:
                    self._write(volumes[name])
                except Exception as error:
                    log.warning("pod %s: volume %s not refreshed: %s", self.dir.name, name, error)

    def _cluster_dns(self) -> str:
        policy = self.pod["spec"].get("dnsPolicy") or "ClusterFirst"
        return self._node.cluster_dns() if policy.startswith("ClusterFirst") else ""

    def _source(self, volume: Mapping[str, Any]) -> tuple[Path, bool]:
        name = volume["name"]
        if "emptyDir" in volume:
            path = self.dir / "volumes" / name
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o777)  # as the kubelet makes it: any user of the pod may write
            return path, False
        if any(kind in volume for kind in FILE_VOLUMES):
            self._write(volume)
            self._written.add(name)
            return self.dir / "volumes" / name, True  # always read-only, as in the kubelet
        if "persistentVolumeClaim" in volume:
            return self._claim(volume["persistentVolumeClaim"])
        if "hostPath" in volume:
            return _host_path(volume), False
        kinds = sorted(set(volume) - {"name"})
        raise EnvError(f"volume {name!r}: {kinds} volumes are not supported by the node agent")

    def _write(self, volume: Mapping[str, Any]) -> None:
        meta, spec = self.pod["metadata"], self.pod["spec"]
        namespace = meta["namespace"]
        who = PodIdentity(namespace, spec.get("serviceAccountName") or "default", meta["name"], meta["uid"])

        def get(kind: str, name: str) -> Mapping[str, Any] | None:
            return self._node.read(kind, namespace, name)

        def token(audience: str, seconds: int) -> str:
            return self._node.tokens.get(who, audience, seconds)

        write_payload(self.dir / "volumes" / volume["name"], volume_payload(volume, self.pod, get, token))

    def _claim(self, source: Mapping[str, Any]) -> tuple[Path, bool]:
        namespace, name = self.pod["metadata"]["namespace"], source.get("claimName", "")
        claim = self._node.read("PersistentVolumeClaim", namespace, name)
        if claim is None:
            raise EnvError(f'persistentvolumeclaim "{name}" not found')
        volume_name = (claim.get("spec") or {}).get("volumeName")
        if (claim.get("status") or {}).get("phase") != "Bound" or not volume_name:
            raise EnvError(f'persistentvolumeclaim "{name}" is not bound yet')
        volume = self._node.read("PersistentVolume", "", volume_name) or {}
        spec = volume.get("spec") or {}
        path = (spec.get("hostPath") or spec.get("local") or {}).get("path")
        if not path:
            raise EnvError(f"persistentvolume {volume_name}: only hostPath and local volumes can be mounted")
        return Path(path), bool(source.get("readOnly"))


class NodeVolumes:
    """What all pods of the agent share: the API reader, tokens, the cluster DNS address, the sync."""

    def __init__(
        self,
        state_dir: Path,
        read: ReadObject,
        tokens: TokenCache,
        host_resolv: ResolvConf,
        dns_service: tuple[str, str] = ("kube-system", "kube-dns"),
    ) -> None:
        self.state_dir = state_dir
        self.read = read
        self.tokens = tokens
        self.host_resolv = host_resolv
        self._dns_service = dns_service
        self._dns = ""
        self._lock = threading.Lock()
        self._pods: dict[str, PodVolumes] = {}

    def cluster_dns(self) -> str:
        """The kube-dns Service's ClusterIP (a kubelet's --cluster-dns); EnvError until it exists."""
        if not self._dns:
            service = self.read("Service", *self._dns_service) or {}
            ip = (service.get("spec") or {}).get("clusterIP") or ""
            if not ip or ip == "None":
                raise EnvError("waiting for Service {}/{}: the cluster's DNS".format(*self._dns_service))
            self._dns = ip
        return self._dns

    def pod(self, pod: Mapping[str, Any], ip: str) -> PodVolumes:
        volumes = PodVolumes(self, pod, ip)
        with self._lock:
            self._pods[pod["metadata"]["uid"]] = volumes
        return volumes

    def remove(self, uid: str) -> None:
        """The pod is gone: its files (emptyDirs included) and tokens go too."""
        with self._lock:
            volumes = self._pods.pop(uid, None)
        if volumes is not None:
            with volumes._lock:  # not while the sync thread is writing there
                volumes.closed = True
        self.tokens.forget(uid)
        shutil.rmtree(self.state_dir / KUBELET_PODS / uid, ignore_errors=True)

    def sync_forever(self, stop: threading.Event) -> None:
        while not stop.wait(SYNC_PERIOD):
            with self._lock:
                pods = list(self._pods.values())
            for volumes in pods:
                volumes.refresh()
