"""Pod writes (status patches and the final delete) on their own thread, the latest per pod only.

The main loop never waits for the apiserver: it hands over what a pod's status should be now, and a
status not yet sent is simply replaced by a newer one. A failed write is retried unless superseded;
a pod's final delete replaces whatever status was still pending for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import kubernetes

from flashsale_dev.cluster.node_agent import kube

log = logging.getLogger(__name__)

RETRY_AFTER = 1.0


class PodWriter:
    def __init__(self, api: kubernetes.client.ApiClient, stop: threading.Event) -> None:
        self._core = kubernetes.client.CoreV1Api(api)
        self._stop = stop
        self._wake = threading.Condition()
        self._pending: dict[str, tuple[str, Callable[[], None]]] = {}  # uid -> (what, write)
        self._thread = threading.Thread(target=self._run, name="pod-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def patch_status(self, namespace: str, name: str, uid: str, status: dict[str, Any]) -> None:
        self._put(uid, "status", lambda: kube.patch_pod_status(self._core, namespace, name, uid, status))

    def delete(self, namespace: str, name: str, uid: str) -> None:
        self._put(uid, "delete", lambda: kube.delete_pod(self._core, namespace, name, uid))

    def _put(self, uid: str, what: str, write: Callable[[], None]) -> None:
        with self._wake:
            if self._pending.get(uid, ("",))[0] == "delete" and what != "delete":
                return  # the pod is going: a late status would only fail
            self._pending[uid] = (what, write)
            self._wake.notify()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._wake:
                while not self._pending and not self._stop.is_set():
                    self._wake.wait(1.0)
                if self._stop.is_set():
                    return
                uid, (what, write) = next(iter(self._pending.items()))
                del self._pending[uid]
            try:
                write()
            except Exception as error:
                # 404: the pod is gone; 409: a delete's uid precondition met a namesake.
                if kube.is_status(error, 404, 409):
                    continue
                # 422 "metadata.uid: field is immutable" is a status patch meeting a namesake; any
                # other 400/422 is a bug of ours. Retrying would not help either.
                if kube.is_status(error, 400, 422):
                    log.warning("pod %s %s rejected: %s", uid, what, getattr(error, "body", error))
                    continue
                log.warning("pod %s %s failed, will retry: %s", uid, what, error)
                with self._wake:
                    self._pending.setdefault(uid, (what, write))
                self._stop.wait(RETRY_AFTER)
