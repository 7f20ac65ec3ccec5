"""Bound pods, list-then-watch, handed to the main loop as events on a queue.

Only pods with a node (`spec.nodeName!=`) are listed and watched: the API then reports a pod as ADDED
when the scheduler binds it. A fresh listing (at start, and after any broken or expired watch) is
sent whole, as a "sync": the main loop forgets every pod it does not contain.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

import kubernetes
from kubernetes.watch.watch import iter_resp_lines

from flashsale_dev.cluster.node_agent import kube

log = logging.getLogger(__name__)

BOUND = "spec.nodeName!="
WATCH_SECONDS = 300  # the server ends each watch after this; we resume from the last version


@dataclass(frozen=True)
class PodEvent:
    kind: str  # "sync" (pods = the whole listing), "upsert" or "delete" (pods = the one pod)
    pods: tuple[dict[str, Any], ...]


class PodInformer:
    def __init__(
        self, api: kubernetes.client.ApiClient, events: queue.Queue[PodEvent], stop: threading.Event
    ) -> None:
        self._core = kubernetes.client.CoreV1Api(api)
        self._events = events
        self._stop = stop
        self.synced = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pod-informer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                version = self._list()
                self.synced.set()
                while not self._stop.is_set() and version:
                    version = self._watch(version)
            except Exception as error:  # the apiserver restarting, say: list again
                log.warning("pod list/watch failed, listing again: %s", error)
                self._stop.wait(1.0)

    def _list(self) -> str:
        listing = kube.raw(
            self._core.list_pod_for_all_namespaces(
                field_selector=BOUND, _preload_content=False, _request_timeout=kube.TIMEOUT
            )
        )
        self._events.put(PodEvent("sync", tuple(listing.get("items") or [])))
        return str(listing["metadata"]["resourceVersion"])

    def _watch(self, version: str) -> str:
        """Stream events from `version`; returns where to resume, or "" to list again."""
        response = self._core.list_pod_for_all_namespaces(
            field_selector=BOUND, watch=True, resource_version=version, allow_watch_bookmarks=True,
            timeout_seconds=WATCH_SECONDS, _preload_content=False,
            _request_timeout=(kube.TIMEOUT[0], WATCH_SECONDS + 30),
        )  # fmt: skip
        try:
            for line in iter_resp_lines(response):
                if self._stop.is_set():
                    return ""
                if not line:
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":  # typically 410 Gone: our version is too old to resume from
                    log.info("pod watch ended: %s", obj.get("message"))
                    return ""
                version = (obj.get("metadata") or {}).get("resourceVersion", version)
                if kind in ("ADDED", "MODIFIED"):
                    self._events.put(PodEvent("upsert", (obj,)))
                elif kind == "DELETED":
                    self._events.put(PodEvent("delete", (obj,)))
        finally:
            response.release_conn()
        return version
