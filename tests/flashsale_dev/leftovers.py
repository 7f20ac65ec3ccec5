"""What a stopped cluster must leave behind: nothing - no pod, CoreDNS, nginx or proxy process, no mount.

Shared by the leftover checks of `make down`, a finished test run and an interrupted one
(tests/integration/test_platform_lifecycle.py, tests/cluster/test_two_clusters_network.py):
`deploy_echo_app` puts real pods with volumes behind a ClusterIP and a LoadBalancer Service and
waits until both answer from the host; the rest records the processes and reads the mount table.

Processes are recorded with their start time (`pid -> start`): this machine's pid_max is small, so
a pid may be reused by another test's process once ours is gone, and only a live process with the
same start time is the one we recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import kubernetes

from flashsale_dev.cluster import LocalCluster
from flashsale_dev.cluster.nodes import FLASHSALE_PLACEMENT, deployment
from flashsale_dev.ports import LOCK_DIR
from flashsale_dev.process import is_running
from flashsale_dev.waiting import wait_for

ECHO_IMAGE = "flashsale/echo:dev"
CONTAINER_ID_SCHEME = "flashsale-local://"  # the node agent's containerID: the process's pid
HOST_MOUNTS = Path("/proc/self/mountinfo")  # this process's mount table: the host's
READY_TIMEOUT = 300.0  # generous: two cores shared with other test runs

Processes = dict[int, int]  # pid -> start time (clock ticks since boot), see the module's docstring


@dataclass(frozen=True)
class EchoApp:
    namespace: str
    cluster_ip: str
    lb_ip: str
    pods: Processes  # the echo process of every Ready pod
    pod_dirs: tuple[str, ...]  # the node agent's directories of those pods (volumes, scratch)
    addresses: tuple[str, ...]  # the pods' and the LoadBalancer's loopback addresses, reserved while in use


def echo_app_objects(name: str, replicas: int) -> dict[str, Any]:
    """A ConfigMap, a Deployment of `flashsale/echo` on the flashsale pool mounting it and an emptyDir
    (at paths missing on the host, so the pod's mount namespace mirrors / and /etc), and two
    Services over it: `<name>` (ClusterIP) and `<name>-lb` (LoadBalancer)."""
    container = {
        "name": "echo",
        "image": ECHO_IMAGE,
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1},
        "volumeMounts": [
            {"name": "settings", "mountPath": "/etc/echo"},
            {"name": "scratch", "mountPath": "/scratch"},
        ],
    }
    volumes = [
        {"name": "settings", "configMap": {"name": f"{name}-settings"}},
        {"name": "scratch", "emptyDir": {}},
    ]
    ports = [{"name": "http", "port": 80, "targetPort": "http"}]
    return {
        "configmap": {"metadata": {"name": f"{name}-settings"}, "data": {"greeting": "hello"}},
        "deployment": deployment(name, replicas, [container], {**FLASHSALE_PLACEMENT, "volumes": volumes}),
        "services": [
            {"metadata": {"name": name}, "spec": {"selector": {"app": name}, "ports": ports}},
            {
                "metadata": {"name": f"{name}-lb"},
                "spec": {"selector": {"app": name}, "ports": ports, "type": "LoadBalancer"},
            },
        ],
    }


def deploy_echo_app(
    api: kubernetes.client.ApiClient,
    namespace: str,
    node_agent_dir: Path,
    *,
    name: str = "echo",
    replicas: int = 2,
) -> EchoApp:
    """Create `namespace` and the echo app in it; wait until every replica is Ready and answers through
    both Services from the host. `node_agent_dir` is the agent's `--state-dir` (pods' directories)."""
    core, apps = kubernetes.client.CoreV1Api(api), kubernetes.client.AppsV1Api(api)
    objects = echo_app_objects(name, replicas)
    core.create_namespace({"metadata": {"name": namespace}})
    core.create_namespaced_config_map(namespace, objects["configmap"])
    apps.create_namespaced_deployment(namespace, objects["deployment"])
    cluster_ip = core.create_namespaced_service(namespace, objects["services"][0]).spec.cluster_ip
    core.create_namespaced_service(namespace, objects["services"][1])

    def ready_pods() -> list[Any] | None:
        pods = [
            pod
            for pod in core.list_namespaced_pod(namespace, label_selector=f"app={name}").items
            if not pod.metadata.deletion_timestamp
            and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
        ]
        return pods if len(pods) == replicas else None

    def describe() -> str:
        pods = core.list_namespaced_pod(namespace, label_selector=f"app={name}").items
        return "\n".join(
            f"{p.metadata.name} on {p.spec.node_name}: {[s.state for s in p.status.container_statuses or []]}"
            for p in pods
        )

    pods = wait_for(
        ready_pods, timeout=READY_TIMEOUT, what=f"{replicas} pods of {name} Ready", describe=describe
    )

    def ingress() -> str | None:
        found = core.read_namespaced_service(f"{name}-lb", namespace).status.load_balancer.ingress or []
        return str(found[0].ip) if found else None

    lb_ip = wait_for(ingress, timeout=READY_TIMEOUT, what=f"a LoadBalancer address for {name}-lb")
    pids = {pod.metadata.name: pod_pid(pod) for pod in pods}
    for address in (cluster_ip, lb_ip):
        # Every replica answers, and the pid it reports is the one the node agent gave as containerID.
        answered = answering_pids(f"http://{address}/", namespace, set(pids.values()))
        assert answered == set(pids.values()), f"{address}: {answered} answered, pods run {pids}"
    dirs = [node_agent_dir / "kubelet-pods" / pod.metadata.uid for pod in pods]
    dirs += [node_agent_dir / "pods" / f"{namespace}_{pod.metadata.name}" for pod in pods]
    assert all(path.is_dir() for path in dirs), dirs
    addresses = (*(str(pod.status.pod_ip) for pod in pods), lb_ip)
    assert address_reservations(addresses) == list(addresses), "pod and LoadBalancer addresses reserved"
    return EchoApp(
        namespace, cluster_ip, lb_ip, record(pids.values()), tuple(str(path) for path in dirs), addresses
    )


def pod_pid(pod: Any) -> int:
    """The pid of a node-agent pod's only container, from its containerID."""
    (status,) = pod.status.container_statuses
    container_id = str(status.container_id)
    assert container_id.startswith(CONTAINER_ID_SCHEME), container_id
    return int(container_id.removeprefix(CONTAINER_ID_SCHEME))


def answering_pids(url: str, namespace: str, expected: set[int], attempts: int = 8) -> set[int]:
    """Wait until requests to `url` (a new connection each) are answered by every one of `expected`."""

    def probe() -> set[int] | None:
        answers = [httpx.get(url, timeout=5).json() for _ in range(attempts)]
        assert all(answer["namespace"] == namespace for answer in answers), answers
        seen = {int(answer["pid"]) for answer in answers}
        return seen if seen == expected else None

    return wait_for(probe, timeout=READY_TIMEOUT, what=f"pids {sorted(expected)} answering {url}")


def start_time(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot), or None if it is not running."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return int(fields[19]) if fields[0] != "Z" else None  # starttime is field 22 of proc(5)


def record(pids: Iterable[int]) -> Processes:
    """The running ones of `pids`, with their start times; fails on any that is not running."""
    recorded = {pid: start_time(pid) for pid in pids}
    missing = sorted(pid for pid, start in recorded.items() if start is None)
    assert not missing, f"not running: {missing}"
    return {pid: start for pid, start in recorded.items() if start is not None}


def still_running(processes: Mapping[int, int]) -> set[int]:
    """Those of the recorded `processes` that still run (the same process: same pid and start time)."""
    return {pid for pid, start in processes.items() if is_running(pid) and start_time(pid) == start}


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


def network_processes(pids: Mapping[str, int | None]) -> Processes:
    """The service proxy, CoreDNS and nginx edge among a cluster's component pids (by component
    name, as LocalPlatform.pids() and platform.json give them), with every process below the
    edge: nginx's master, workers and cache helpers (those that end by themselves - the cache
    loader, a worker retired by a reload - may already be gone when the cluster stops)."""
    wanted = [pids.get(name) for name in ("service-proxy", "coredns", "lb-edge")]
    assert all(wanted), f"network components not running: {dict(pids)}"
    components = record(pid for pid in wanted if pid)
    edge = pids["lb-edge"]
    assert edge is not None
    nginx = {pid: start for pid in descendants(edge) if (start := start_time(pid)) is not None}
    assert len(nginx) >= 2, "nginx's master and a worker"
    return components | nginx


def cluster_network_processes(cluster: LocalCluster) -> Processes:
    """`network_processes` of a running LocalCluster."""
    components = (cluster.service_proxy, cluster.coredns, cluster.lb_edge)
    return network_processes({c.name: c.process.pid for c in components})


def address_reservations(addresses: Iterable[str]) -> list[str]:
    """Those of the loopback `addresses` whose reservation (a lock file, see ports.py) is still there."""
    return [address for address in addresses if (LOCK_DIR / f"ip-{address}.lock").exists()]


def mounts_mentioning(paths: Iterable[str], mountinfo: Path = HOST_MOUNTS) -> list[str]:
    """Lines of a mount table (the host's by default; /proc/<pid>/mountinfo for a process's) that
    mention any of `paths` (as a bind mount's root or as a mount point)."""
    wanted = [path for path in paths if path]
    return [line for line in mountinfo.read_text().splitlines() if any(path in line for path in wanted)]


def assert_mounted_privately(pids: Iterable[int], pod_dirs: Iterable[str]) -> None:
    """The pods' volumes are mounted in each pod's own mount namespace, and nowhere in the host's:
    the leftover check of the host's mount table would see them if they were."""
    pod_dirs = list(pod_dirs)
    for pid in pids:
        assert mounts_mentioning(pod_dirs, Path(f"/proc/{pid}/mountinfo")), (
            f"pod process {pid} mounts nothing"
        )
    assert mounts_mentioning(pod_dirs) == [], "a pod's mount reached the host"


def mount_points(mountinfo: Path = HOST_MOUNTS) -> list[str]:
    """Every mount point of a mount table (field 5 of proc(5)'s mountinfo), sorted, with repeats: a
    mount stacked on an existing mount point counts too."""
    return sorted(line.split()[4] for line in mountinfo.read_text().splitlines() if line.strip())
