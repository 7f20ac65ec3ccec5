"""The main loop: pods in, processes and statuses out.

It runs on the process's main thread and is the only code that spawns container processes, so
PR_SET_PDEATHSIG (bound to the spawning thread) kills them all if the agent dies, even by SIGKILL.
Other threads only talk to the API (informer, heartbeat, writer), keep volume files current
(volume-sync), provision claims (local-path) or run probes.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import kubernetes

from flashsale_dev.cluster.images import PROJECT_IMAGES, ImageSpec
from flashsale_dev.cluster.local_path import LocalPathProvisioner
from flashsale_dev.cluster.node_agent import kube
from flashsale_dev.cluster.node_agent.addresses import PodAddresses
from flashsale_dev.cluster.node_agent.dns_files import ResolvConf, parse_resolv_conf
from flashsale_dev.cluster.node_agent.heartbeat import NodeHeartbeat
from flashsale_dev.cluster.node_agent.informer import PodEvent, PodInformer
from flashsale_dev.cluster.node_agent.pod import PodContext, PodRuntime
from flashsale_dev.cluster.node_agent.service_env import MASTER_SERVICE, service_env
from flashsale_dev.cluster.node_agent.tokens import TokenCache
from flashsale_dev.cluster.node_agent.volumes import NodeVolumes
from flashsale_dev.cluster.node_agent.writer import PodWriter

log = logging.getLogger(__name__)

TICK = 0.2  # seconds: how soon an exit, a probe result or a deletion is acted upon
SHUTDOWN_GRACE = 3.0  # seconds the processes get to stop when the agent itself is stopped
TERMINAL = ("Succeeded", "Failed")


class Agent:
    def __init__(
        self,
        api: kubernetes.client.ApiClient,
        selector: str,
        state_dir: Path,
        kubelet_version: str,
        images: Mapping[str, ImageSpec] = PROJECT_IMAGES,
    ) -> None:
        self.stop = threading.Event()
        self._events: queue.Queue[PodEvent] = queue.Queue()
        self.informer = PodInformer(api, self._events, self.stop)
        self.heartbeat = NodeHeartbeat(api, selector, kubelet_version, self.stop)
        self.writer = PodWriter(api, self.stop)
        # The node's storage: claims of the default StorageClass get directories on this machine.
        self.provisioner = LocalPathProvisioner(api, state_dir / "local-path", self.stop)
        core = kubernetes.client.CoreV1Api(api)
        self._probe_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="probe")
        self._addresses = PodAddresses()

        def read(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
            return kube.read_object(core, kind, namespace, name)

        def services(pod: Mapping[str, Any]) -> dict[str, str]:
            namespace = pod["metadata"]["namespace"]
            return service_env(pod, kube.list_services(core, namespace), read("Service", *MASTER_SERVICE))

        tokens = TokenCache(lambda *request: kube.request_token(core, *request), time.time)
        self.volumes = NodeVolumes(state_dir, read, tokens, _host_resolv_conf())
        self._volume_sync = threading.Thread(
            target=self.volumes.sync_forever, args=(self.stop,), name="volume-sync", daemon=True
        )
        self._context = PodContext(
            addresses=self._addresses,
            state_dir=state_dir,
            lookup_for=lambda namespace: kube.secret_lookup(core, namespace),
            probe_pool=self._probe_pool,
            images=images,
            volumes=self.volumes,
            service_env=services,
        )
        self._pods: dict[str, dict[str, Any]] = {}  # uid -> the latest object of every bound pod
        self._runtimes: dict[str, PodRuntime] = {}  # uid -> the pods of our nodes
        self._left_alone: set[tuple[str, bool]] = set()  # (uid, deleting) of pods we run nothing for
        self.last_tick = time.monotonic()
        self._stop_requested = False

    def request_stop(self) -> None:
        """Safe in a signal handler: a plain assignment, no lock (Event.set could deadlock there)."""
        self._stop_requested = True

    def healthy(self) -> bool:
        return self.informer.synced.is_set() and time.monotonic() - self.last_tick < 10

    def run(self) -> None:
        """Until request_stop() (on SIGTERM/SIGINT); then every process is stopped."""
        for part in (self.informer, self.heartbeat, self.writer, self.provisioner, self._volume_sync):
            part.start()
        try:
            while not self._stop_requested:
                self._drain()
                self._reconcile(time.monotonic())
                self.last_tick = time.monotonic()
        finally:
            self._shutdown()

    def _drain(self) -> None:
        try:
            event = self._events.get(timeout=TICK)
            while True:
                self._apply(event)
                event = self._events.get_nowait()
        except queue.Empty:
            pass

    def _apply(self, event: PodEvent) -> None:
        if event.kind == "sync":
            self._pods = {p["metadata"]["uid"]: p for p in event.pods}
        elif event.kind == "upsert":
            self._pods[event.pods[0]["metadata"]["uid"]] = event.pods[0]
        else:
            self._pods.pop(event.pods[0]["metadata"]["uid"], None)

    def _reconcile(self, now: float) -> None:
        nodes = self.heartbeat.nodes()
        for uid in [uid for uid in self._runtimes if self._node_of(uid) not in nodes]:
            runtime = self._runtimes.pop(uid)  # the pod object is gone: nothing to report to
            log.info("pod %s/%s vanished: killing its processes", runtime.namespace, runtime.name)
            runtime.kill()
            runtime.release()
        self._left_alone = {key for key in self._left_alone if key[0] in self._pods}
        for uid, pod in self._pods.items():
            if pod["spec"].get("nodeName") in nodes:
                try:
                    self._sync(uid, pod, now)
                except Exception:
                    log.exception(
                        "pod %s/%s: sync failed", pod["metadata"]["namespace"], pod["metadata"]["name"]
                    )

    def _node_of(self, uid: str) -> str:
        return str((self._pods.get(uid) or {}).get("spec", {}).get("nodeName", ""))

    def _sync(self, uid: str, pod: dict[str, Any], now: float) -> None:
        meta = pod["metadata"]
        runtime = self._runtimes.get(uid)
        deleting = bool(meta.get("deletionTimestamp"))
        if runtime is None:
            if (uid, deleting) in self._left_alone:
                return
            status = pod.get("status") or {}
            if deleting or status.get("phase") in TERMINAL:
                # Finished or going before this agent started: never run again; a deletion is
                # confirmed; an address reserved by a killed agent is freed.
                self._left_alone.add((uid, deleting))
                self._addresses.discard_stale(status.get("podIP") or "")
                if deleting:
                    self.writer.delete(meta["namespace"], meta["name"], uid)
                return
            runtime = self._runtimes[uid] = PodRuntime(pod, self._context, time.time())
            log.info("pod %s/%s: starting on %s at %s", runtime.namespace, runtime.name,
                     pod["spec"]["nodeName"], runtime.ip)  # fmt: skip
        runtime.tick(pod, now)
        if runtime.stopping:
            if runtime.stopped(now):
                del self._runtimes[uid]
                runtime.release()
                self._left_alone.add((uid, True))
                self.writer.delete(runtime.namespace, runtime.name, uid)
                log.info("pod %s/%s: stopped, deleting", runtime.namespace, runtime.name)
            return
        status = runtime.status(time.time())
        if status != runtime.sent:
            runtime.sent = status
            self.writer.patch_status(runtime.namespace, runtime.name, uid, status)

    def _shutdown(self) -> None:
        self.stop.set()
        runtimes = list(self._runtimes.values())
        log.info("stopping: %d pods' processes", len(runtimes))
        now = time.monotonic()
        for runtime in runtimes:
            for container in runtime.all_containers:
                container.begin_stop(now, SHUTDOWN_GRACE)
        while not all([r.stopped(time.monotonic()) for r in runtimes]):  # noqa: C419 - each must run
            time.sleep(0.05)
        self._addresses.release_all()
        self._probe_pool.shutdown(wait=False, cancel_futures=True)
        log.info("stopped")


def _host_resolv_conf() -> ResolvConf:
    """This machine's resolver: its search domains follow the cluster's, as on a kubelet's node."""
    try:
        return parse_resolv_conf(Path("/etc/resolv.conf").read_text())
    except OSError:
        return ResolvConf()
