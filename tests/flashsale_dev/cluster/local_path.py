"""The node's storage provisioner: PersistentVolumeClaims get a directory, as kind's local-path does.

It runs inside the node agent (a thread: the node agent's machine is where the directories live) and
serves the default StorageClass `standard` (provisioner flashsale.dev/local-path, reclaimPolicy
Delete, WaitForFirstConsumer like kind's: the scheduler picks the pod's node first and names it on
the claim, so the volume is made for that node). A claim of that class gets a directory under the
agent's state dir and a hostPath PersistentVolume, pinned to the node and pre-bound to the claim;
the controller-manager's PV controller does the binding. Once the claim is deleted the PV is
Released: the directory is removed and the PV deleted.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kubernetes

from flashsale_dev.cluster.node_agent import kube

log = logging.getLogger(__name__)

PROVISIONER = "flashsale.dev/local-path"
CLASS_NAME = "standard"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
PERIOD = 1.0  # seconds between two looks at the claims and volumes

STORAGE_CLASS: dict[str, Any] = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {
        "name": CLASS_NAME,
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
    },
    "provisioner": PROVISIONER,
    "reclaimPolicy": "Delete",
    "volumeBindingMode": "WaitForFirstConsumer",
}


def volume_name(claim: Mapping[str, Any]) -> str:
    return f"pvc-{claim['metadata']['uid']}"


def needs_volume(claim: Mapping[str, Any], classes: Mapping[str, str]) -> bool:
    """A pending claim of one of our classes, whose pod's node the scheduler has chosen."""
    spec, meta = claim.get("spec") or {}, claim.get("metadata") or {}
    ours = classes.get(spec.get("storageClassName") or "") == PROVISIONER
    chosen = SELECTED_NODE in (meta.get("annotations") or {})
    return ours and chosen and not spec.get("volumeName") and not meta.get("deletionTimestamp")


def persistent_volume(claim: Mapping[str, Any], path: Path) -> dict[str, Any]:
    meta, spec = claim["metadata"], claim["spec"]
    node = meta["annotations"][SELECTED_NODE]
    on_node = {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": volume_name(claim), "annotations": {PROVISIONED_BY: PROVISIONER}},
        "spec": {
            "capacity": {
                "storage": ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
            },
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": spec.get("storageClassName"),
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
            "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [on_node]}]}},
        },
    }


def to_reclaim(volume: Mapping[str, Any]) -> bool:
    """Ours, and its claim is gone (Released): reclaimPolicy Delete says the data goes too."""
    meta, spec = volume.get("metadata") or {}, volume.get("spec") or {}
    ours = (meta.get("annotations") or {}).get(PROVISIONED_BY) == PROVISIONER
    released = (volume.get("status") or {}).get("phase") in ("Released", "Failed")
    return ours and released and spec.get("persistentVolumeReclaimPolicy") == "Delete"


class LocalPathProvisioner:
    def __init__(self, api: kubernetes.client.ApiClient, root: Path, stop: threading.Event) -> None:
        self._core = kubernetes.client.CoreV1Api(api)
        self._storage = kubernetes.client.StorageV1Api(api)
        self.root = root
        self._stop = stop
        self._thread = threading.Thread(target=self._run, name="local-path", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._ensure_class()
                self._pass()
            except Exception as error:  # the apiserver restarting, say: the next pass tries again
                log.warning("local-path: %s", error)
            self._stop.wait(PERIOD)

    def _ensure_class(self) -> None:
        try:
            self._storage.create_storage_class(STORAGE_CLASS, _request_timeout=kube.TIMEOUT)
            log.info("local-path: created the default StorageClass %s", CLASS_NAME)
        except kubernetes.client.ApiException as error:
            if error.status != 409:
                raise

    def _pass(self) -> None:
        classes = {
            c["metadata"]["name"]: c.get("provisioner", "")
            for c in kube.raw(self._storage.list_storage_class(_preload_content=False))["items"]
        }
        claims = kube.raw(self._core.list_persistent_volume_claim_for_all_namespaces(_preload_content=False))
        for claim in claims["items"]:
            if needs_volume(claim, classes):
                self._provision(claim)
        volumes = kube.raw(self._core.list_persistent_volume(_preload_content=False))
        for volume in volumes["items"]:
            if to_reclaim(volume):
                self._reclaim(volume)

    def _provision(self, claim: Mapping[str, Any]) -> None:
        meta = claim["metadata"]
        path = self.root / f"{volume_name(claim)}_{meta['namespace']}_{meta['name']}"
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o777)  # as local-path does: whatever user the pod runs as may write
        try:
            self._core.create_persistent_volume(persistent_volume(claim, path), _request_timeout=kube.TIMEOUT)
        except kubernetes.client.ApiException as error:
            if error.status != 409:
                raise
            return
        log.info("local-path: %s/%s -> %s", meta["namespace"], meta["name"], path)

    def _reclaim(self, volume: Mapping[str, Any]) -> None:
        path = Path((volume["spec"].get("hostPath") or {}).get("path", ""))
        if path.parent == self.root:  # never remove what this provisioner did not make
            shutil.rmtree(path, ignore_errors=True)
        try:
            self._core.delete_persistent_volume(volume["metadata"]["name"], _request_timeout=kube.TIMEOUT)
        except kubernetes.client.ApiException as error:
            if error.status != 404:
                raise
        log.info("local-path: reclaimed %s (%s)", volume["metadata"]["name"], path)
