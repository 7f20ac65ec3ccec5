"""One collection (all Services, all Pods), listed then watched, mirrored in memory.

Each change calls `on_change()` (from this watcher's thread): the proxy then recomputes everything
from the mirrors, which is cheap at this cluster's size and leaves no incremental state to get wrong.
A broken or expired watch lists again.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from kubernetes.watch.watch import iter_resp_lines

log = logging.getLogger(__name__)

WATCH_SECONDS = 300
TIMEOUT = (5, 15)


class Mirror:
    def __init__(self, name: str, list_call: Callable[..., Any], on_change: Callable[[], None]) -> None:
        self.name = name
        self._list_call = list_call  # e.g. CoreV1Api.list_service_for_all_namespaces
        self._on_change = on_change
        self._lock = threading.Lock()
        self._objects: dict[str, dict[str, Any]] = {}
        self.synced = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._objects.values())

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                version = self._list()
                while version and not self._stop.is_set():
                    version = self._watch(version)
            except Exception as error:  # the apiserver restarting, say: list again
                log.warning("%s list/watch failed, listing again: %s", self.name, error)
                self._stop.wait(1.0)

    def _list(self) -> str:
        response = self._list_call(_preload_content=False, _request_timeout=TIMEOUT)
        listing = json.loads(response.data)
        with self._lock:
            self._objects = {o["metadata"]["uid"]: o for o in listing.get("items") or []}
        self.synced.set()
        self._on_change()
        return str(listing["metadata"]["resourceVersion"])

    def _watch(self, version: str) -> str:
        """Apply events from `version` on; returns where to resume, or "" to list again."""
        response = self._list_call(
            watch=True, resource_version=version, allow_watch_bookmarks=True,
            timeout_seconds=WATCH_SECONDS, _preload_content=False,
            _request_timeout=(TIMEOUT[0], WATCH_SECONDS + 30),
        )  # fmt: skip
        try:
            for line in iter_resp_lines(response):
                if self._stop.is_set():
                    return ""
                if not line:
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":  # typically 410 Gone: too old to resume from
                    return ""
                version = (obj.get("metadata") or {}).get("resourceVersion", version)
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    with self._lock:
                        if kind == "DELETED":
                            self._objects.pop(obj["metadata"]["uid"], None)
                        else:
                            self._objects[obj["metadata"]["uid"]] = obj
                    self._on_change()
        finally:
            response.release_conn()
        return version
