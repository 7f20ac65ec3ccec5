"""One pod on one of the agent's nodes: its address, its containers, its status, its deletion."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from flashsale_dev.cluster.images import ImageSpec, compose_argv, find_image, image_roots, is_project_image
from flashsale_dev.cluster.node_agent import mount_ns
from flashsale_dev.cluster.node_agent.addresses import PodAddresses
from flashsale_dev.cluster.node_agent.container import Launch, PodRef, ProcessContainer
from flashsale_dev.cluster.node_agent.dns_files import pod_hostname
from flashsale_dev.cluster.node_agent.envvars import (
    Lookup,
    expand,
    identity_env,
    process_env,
    resolve_env,
)
from flashsale_dev.cluster.node_agent.pod_status import (
    HOST_IP,
    ContainerStatuses,
    initializing,
    render_pod_status,
)
from flashsale_dev.cluster.node_agent.stand_ins import SimulatedContainer, UnknownImageContainer
from flashsale_dev.cluster.node_agent.volumes import NodeVolumes

# Run by path with -I: the wrapper imports only the standard library, so it adds little to a start.
MOUNT_NS = [sys.executable, "-I", mount_ns.__file__]

MAX_GRACE = 30.0  # seconds: a test harness does not wait for the API's longer grace periods
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")  # a container image would bring its own


class Container(Protocol):
    name: str
    finished: bool

    def tick(self, now: float) -> None: ...
    def status(self) -> dict[str, Any]: ...
    def begin_stop(self, now: float, grace: float) -> None: ...
    def stopped(self, now: float) -> bool: ...
    def kill(self) -> None: ...


@dataclass(frozen=True)
class PodContext:
    """What all pods share."""

    addresses: PodAddresses
    state_dir: Path
    lookup_for: Callable[[str], Lookup]  # namespace -> its Secrets and ConfigMaps
    probe_pool: Executor
    images: Mapping[str, ImageSpec]
    volumes: NodeVolumes
    service_env: Callable[[Mapping[str, Any]], dict[str, str]]  # pod -> KUBERNETES_SERVICE_HOST & co.


def grace_period(pod: Mapping[str, Any]) -> float:
    """The grace the deletion asked for, else the pod's own, capped at MAX_GRACE."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    grace = meta.get("deletionGracePeriodSeconds")
    if grace is None:
        grace = spec.get("terminationGracePeriodSeconds")
    return min(float(30 if grace is None else grace), MAX_GRACE)


def _epoch(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else None


def _init_done(container: Container, sidecar: bool) -> bool:
    """A sidecar counts once started; any other init container once it has exited 0."""
    status = container.status()
    if sidecar:
        return bool(status["started"])
    return (status["state"].get("terminated") or {}).get("exitCode") == 0


class PodRuntime:
    def __init__(self, pod: dict[str, Any], context: PodContext, now_wall: float) -> None:
        meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.uid: str = meta["uid"]
        self.pod = pod
        self._context = context
        # An agent restart keeps the pod's address (if still free) and its start time.
        self.ip = context.addresses.take(status.get("podIP"))
        self.volumes = context.volumes.pod(pod, self.ip)
        self.start_time = _epoch(status.get("startTime")) or now_wall
        self.sent: dict[str, Any] | None = None  # the status last handed to the writer
        self.stopping = False
        init_specs = spec.get("initContainers") or []
        self._sidecars = frozenset(c["name"] for c in init_specs if c.get("restartPolicy") == "Always")
        self._initialized = not init_specs  # latched: init containers never run again once done
        before = {s["name"]: s for s in status.get("initContainerStatuses") or []}
        self.init_containers = [self._container(c, before.get(c["name"], {}), init=True) for c in init_specs]
        before = {s["name"]: s for s in status.get("containerStatuses") or []}
        self.containers = [self._container(c, before.get(c["name"], {})) for c in spec["containers"]]

    @property
    def all_containers(self) -> list[Container]:
        return [*self.init_containers, *self.containers]

    @property
    def deleting(self) -> bool:
        return bool(self.pod["metadata"].get("deletionTimestamp"))

    def tick(self, pod: dict[str, Any], now: float) -> None:
        self.pod = self.volumes.pod = pod  # new labels reach downwardAPI files at the next sync
        if self.deleting and not self.stopping:
            self.stopping = True
            for container in self.all_containers:
                container.begin_stop(now, grace_period(pod))
        if self.stopping:
            return
        if not self._initialized:
            for container in self.init_containers:  # in order: each waits for the one before
                container.tick(now)
                if not _init_done(container, container.name in self._sidecars):
                    return
            self._initialized = True
        for container in self.all_containers:  # sidecars keep running next to the main containers
            container.tick(now)

    def stopped(self, now: float) -> bool:
        """After a deletion began: True once every process is gone (SIGKILL after the grace)."""
        return all([container.stopped(now) for container in self.all_containers])  # noqa: C419 - each must run

    def status(self, now_wall: float) -> dict[str, Any]:
        incomplete = [
            c.name
            for c in self.init_containers
            if not self._initialized and not _init_done(c, c.name in self._sidecars)
        ]
        main = [
            c.status() if self._initialized else initializing(spec)
            for c, spec in zip(self.containers, self.pod["spec"]["containers"], strict=True)
        ]
        statuses = ContainerStatuses(
            main=main,
            init=[c.status() for c in self.init_containers],
            sidecars=self._sidecars,
            incomplete_init=incomplete,
            init_failed=any(c.finished and c.name in incomplete for c in self.init_containers),
        )
        return render_pod_status(
            self.pod, statuses, pod_ip=self.ip, start_time=self.start_time, now=now_wall, sent=self.sent
        )

    def kill(self) -> None:
        for container in self.all_containers:
            container.kill()

    def release(self) -> None:
        self._context.volumes.remove(self.uid)
        self._context.addresses.release(self.ip)

    def _container(
        self, spec: Mapping[str, Any], previous: Mapping[str, Any], *, init: bool = False
    ) -> Container:
        image = spec.get("image", "")
        sidecar = spec.get("restartPolicy") == "Always"
        found = find_image(image, self._context.images)
        if found is None:
            if is_project_image(image):
                return UnknownImageContainer(spec)
            return SimulatedContainer(spec, self.uid, self.start_time, completes=init and not sidecar)
        policy = self.pod["spec"].get("restartPolicy") or "Always"
        if init:  # the kubelet retries a failed init container unless the pod says Never
            policy = "Always" if sidecar else ("Never" if policy == "Never" else "OnFailure")
        ref = PodRef(
            self.namespace, self.name, self.uid, policy, self.ip, grace_period({"spec": self.pod["spec"]})
        )
        return ProcessContainer(
            spec,
            ref,
            lambda: self._launch(spec, found),
            self._context.probe_pool,
            restart_count=int(previous.get("restartCount") or 0),
            previously_started=bool(previous.get("containerID")),
        )

    def _launch(self, spec: Mapping[str, Any], image: ImageSpec) -> Launch:
        """Resolved now, not at pod creation: a Secret may appear later, as with the kubelet."""
        lookup = self._context.lookup_for(self.namespace)
        # As the kubelet: the Services' variables first, so the container's own may use or override them.
        defined = {**self._context.service_env(self.pod), **identity_env(self.pod, self.ip)}
        env = resolve_env(self.pod, spec, lookup, pod_ip=self.ip, host_ip=HOST_IP, defined=defined)
        argv = [expand(part, env) for part in compose_argv(image, spec.get("command"), spec.get("args"))]
        base = {k: os.environ[k] for k in _INHERITED if k in os.environ}
        base["HOSTNAME"] = pod_hostname(self.pod)
        pods_dir = self._context.state_dir / "pods"
        # A pod's scratch directory stands in for its container's writable root.
        cwd = pods_dir / f"{self.namespace}_{self.name}"
        cwd.mkdir(parents=True, exist_ok=True)
        plan = {
            "binds": self.volumes.mounts(spec),
            "staging": str(self.volumes.dir / f"mnt-{spec['name']}"),
            "cwd": str(cwd),
            "hostname": base["HOSTNAME"],
            "image": image_roots(),
        }
        return Launch(
            argv=[*MOUNT_NS, json.dumps(plan), *argv],
            env=process_env(base, image.env, env),
            cwd=cwd,
            log_path=pods_dir / f"{self.namespace}_{self.name}_{spec['name']}.log",
        )
