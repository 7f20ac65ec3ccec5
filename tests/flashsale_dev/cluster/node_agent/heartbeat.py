"""Keeps the agent's nodes alive: finds them by label, posts their status, renews their Leases.

The launcher creates the Node objects (after the agent answers /healthz); this thread notices them
within DISCOVER_EVERY seconds and reports them Ready. Status is re-posted every STATUS_EVERY seconds;
the Lease, renewed every RENEW_EVERY seconds, is what the node-lifecycle controller watches.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import kubernetes

from flashsale_dev.cluster.node_agent import kube
from flashsale_dev.cluster.node_agent.node_status import LEASE_NAMESPACE, RENEW_EVERY, lease, node_status

log = logging.getLogger(__name__)

DISCOVER_EVERY = 1.0
STATUS_EVERY = 60.0


class NodeHeartbeat:
    def __init__(
        self, api: kubernetes.client.ApiClient, selector: str, kubelet_version: str, stop: threading.Event
    ) -> None:
        self._core = kubernetes.client.CoreV1Api(api)
        self._leases = kubernetes.client.CoordinationV1Api(api)
        self._selector = selector
        self._version = kubelet_version
        self._stop = stop
        self._boot_id = str(uuid.uuid4())  # a new "boot" per agent run, as after a machine restart
        self._lock = threading.Lock()
        self._nodes: frozenset[str] = frozenset()
        self._status_at: dict[str, float] = {}
        self._lease_at: dict[str, float] = {}
        self._thread = threading.Thread(target=self._run, name="node-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def nodes(self) -> frozenset[str]:
        """The names of the nodes this agent serves (the last successful listing)."""
        with self._lock:
            return self._nodes

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._beat(time.monotonic())
            except Exception as error:  # the apiserver restarting, say: try again next round
                log.warning("node heartbeat failed, retrying: %s", error)
            self._stop.wait(DISCOVER_EVERY)

    def _beat(self, now: float) -> None:
        listing = kube.raw(
            self._core.list_node(
                label_selector=self._selector, _preload_content=False, _request_timeout=kube.TIMEOUT
            )
        )
        nodes = listing.get("items") or []
        with self._lock:
            self._nodes = frozenset(n["metadata"]["name"] for n in nodes)
        for node in nodes:
            name = node["metadata"]["name"]
            if now - self._status_at.get(name, -STATUS_EVERY) >= STATUS_EVERY or not _ready(node):
                self._post_status(node)
                self._status_at[name] = now
            if now - self._lease_at.get(name, -RENEW_EVERY) >= RENEW_EVERY:
                self._renew_lease(node)
                self._lease_at[name] = now

    def _post_status(self, node: dict[str, Any]) -> None:
        name = node["metadata"]["name"]
        previous = (node.get("status") or {}).get("conditions") or []
        status = node_status(name, previous, time.time(), self._version, self._boot_id)
        self._core.patch_node_status(
            name, {"status": status}, _content_type=kube.STRATEGIC, _preload_content=False,
            _request_timeout=kube.TIMEOUT,
        )  # fmt: skip
        if not _ready(node):
            log.info("node %s: posted Ready status", name)

    def _renew_lease(self, node: dict[str, Any]) -> None:
        name = node["metadata"]["name"]
        body = lease(name, node["metadata"]["uid"], time.time())
        try:
            self._leases.patch_namespaced_lease(
                name, LEASE_NAMESPACE, {"spec": body["spec"]}, _content_type=kube.MERGE,
                _preload_content=False, _request_timeout=kube.TIMEOUT,
            )  # fmt: skip
        except kubernetes.client.ApiException as error:
            if error.status != 404:
                raise
            self._leases.create_namespaced_lease(
                LEASE_NAMESPACE, body, _preload_content=False, _request_timeout=kube.TIMEOUT
            )


def _ready(node: dict[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
