"""The operator's own calls to the Kubernetes API (kopf does the watching; this does the writing).

Children go by server-side apply under one field manager, so re-applying is a no-op and a field the
operator stopped rendering is removed. The sale's Secret is the exception: it is created once with a
fresh order-path key and afterwards only patched with the platform's shared values, since the
operator may write Secrets but never read them. Before a child is written, `owners` tells whether it
exists and whose it is (ownership.py); the Secret's patch carries that check itself (JSON Patch
`test`). Synchronous client; called through `asyncio.to_thread`.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import kubernetes
from kubernetes.client.exceptions import ApiException

from flashsale_operator.ownership import UNREAD_HOLDER, Conflict, is_own, owner_tests
from flashsale_operator.spec import GROUP, PLURAL, VERSION

FIELD_MANAGER: Final = "flashsale-operator"
APPLY: Final = "application/apply-patch+yaml"
MERGE: Final = "application/merge-patch+json"
JSON_PATCH: Final = "application/json-patch+json"
KEDA: Final = ("keda.sh", "v1alpha1", "scaledobjects")
REQUEST_TIMEOUT: Final = 15


def api_client() -> kubernetes.client.ApiClient:
    """In a pod: its ServiceAccount (in-cluster config); elsewhere: the current kubeconfig."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        kubernetes.config.load_incluster_config()
    else:
        kubernetes.config.load_kube_config()
    return kubernetes.client.ApiClient()


class ForeignObject(Exception):
    """A write refused because the object is not the sale's (ownership.py)."""

    def __init__(self, conflict: Conflict) -> None:
        super().__init__(str(conflict))
        self.conflict = conflict


class Kube:
    def __init__(self, api: kubernetes.client.ApiClient) -> None:
        self.core = kubernetes.client.CoreV1Api(api)
        self.apps = kubernetes.client.AppsV1Api(api)
        self.policy = kubernetes.client.PolicyV1Api(api)
        self.networking = kubernetes.client.NetworkingV1Api(api)
        self.custom = kubernetes.client.CustomObjectsApi(api)

    def apply(self, manifest: dict[str, Any]) -> None:
        """Server-side apply of one child (Deployment, StatefulSet, Service, PodDisruptionBudget,
        NetworkPolicy)."""
        patch = self._appliers()[manifest["kind"]]
        meta = manifest["metadata"]
        patch(
            meta["name"],
            meta["namespace"],
            manifest,
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type=APPLY,
            _request_timeout=REQUEST_TIMEOUT,
        )

    def _appliers(self) -> dict[str, Callable[..., Any]]:
        return {
            "Deployment": self.apps.patch_namespaced_deployment,
            "StatefulSet": self.apps.patch_namespaced_stateful_set,
            "Service": self.core.patch_namespaced_service,
            "PodDisruptionBudget": self.policy.patch_namespaced_pod_disruption_budget,
            "NetworkPolicy": self.networking.patch_namespaced_network_policy,
            "ScaledObject": lambda name, namespace, body, **kw: self.custom.patch_namespaced_custom_object(
                *KEDA[:2], namespace, KEDA[2], name, body, **kw
            ),
        }

    def owners(self, manifest: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The ownerReferences of the existing object `manifest` names, or None when there is none.

        For every kind `apply` writes (the operator may read them all; never a Secret)."""
        meta = manifest["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        try:
            if manifest["kind"] == "ScaledObject":
                found = self.custom.get_namespaced_custom_object(
                    *KEDA[:2], namespace, KEDA[2], name, _request_timeout=REQUEST_TIMEOUT
                )
                return list((found.get("metadata") or {}).get("ownerReferences") or [])
            existing = self._readers()[manifest["kind"]](name, namespace, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as error:
            if error.status == 404:  # no such object (or, for a ScaledObject, no KEDA on this cluster)
                return None
            raise
        return [
            {
                "apiVersion": r.api_version,
                "kind": r.kind,
                "name": r.name,
                "uid": r.uid,
                "controller": r.controller,
            }
            for r in existing.metadata.owner_references or []
        ]

    def _readers(self) -> dict[str, Callable[..., Any]]:
        return {
            "Deployment": self.apps.read_namespaced_deployment,
            "StatefulSet": self.apps.read_namespaced_stateful_set,
            "Service": self.core.read_namespaced_service,
            "PodDisruptionBudget": self.policy.read_namespaced_pod_disruption_budget,
            "NetworkPolicy": self.networking.read_namespaced_network_policy,
        }

    def secret_is_own(self, name: str, namespace: str, uid: str) -> bool | None:
        """Whether the Secret is the sale's (None: there is none), without reading it: a JSON Patch of
        only `test` operations writes nothing, and fails (422) on a Secret that is not the sale's."""
        try:
            self.core.patch_namespaced_secret(
                name, namespace, owner_tests(uid), _content_type=JSON_PATCH, _request_timeout=REQUEST_TIMEOUT
            )
        except ApiException as error:
            if error.status == 404:
                return None
            if error.status == 422:
                return False
            raise
        return True

    def create_or_patch_secret(self, created: dict[str, Any], shared: dict[str, Any], uid: str) -> bool:
        """Creates `created` (True), or when it exists and is the sale's patches in `shared` only
        (False); raises ForeignObject (nothing written) when it exists and is not the sale's.

        `shared`'s `data` may name entries to remove (null values); `stringData` sets the others."""
        namespace = created["metadata"]["namespace"]
        try:
            self.core.create_namespaced_secret(namespace, created, _request_timeout=REQUEST_TIMEOUT)
            return True
        except ApiException as error:
            if error.status != 409:
                raise
        name = shared["metadata"]["name"]
        values = [
            {
                "op": "add",
                "path": f"/data/{_pointer(key)}",
                "value": base64.b64encode(value.encode()).decode(),
            }
            for key, value in shared["stringData"].items()
        ]
        try:
            self.core.patch_namespaced_secret(
                name, namespace, [*owner_tests(uid), *values], _content_type=JSON_PATCH,
                _request_timeout=REQUEST_TIMEOUT,
            )  # fmt: skip
        except ApiException as error:
            if error.status == 422:
                raise ForeignObject(Conflict("Secret", name, UNREAD_HOLDER)) from None
            raise
        removals = {key: None for key, value in (shared.get("data") or {}).items() if value is None}
        if removals:  # entries earlier versions wrote; the Secret was just proven the sale's
            self.core.patch_namespaced_secret(
                name, namespace, {"data": removals}, _request_timeout=REQUEST_TIMEOUT
            )
        return False

    def patch_status(self, name: str, namespace: str, status: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            {"status": status},
            _content_type=MERGE,
            _request_timeout=REQUEST_TIMEOUT,
        )

    def post_event(
        self, involved: dict[str, Any], name: str, reason: str, message: str, kind: str = "Normal"
    ) -> bool:
        """An Event with a name of our choosing: posting the same one twice is a 409, ignored (False)."""
        now = datetime.now(UTC).isoformat()
        body = {
            "metadata": {"name": name, "namespace": involved["namespace"]},
            "involvedObject": involved,
            "type": kind,
            "reason": reason,
            "message": message[:1024],
            "action": reason,
            "reportingComponent": FIELD_MANAGER,
            "reportingInstance": os.environ.get("POD_NAME", FIELD_MANAGER),
            "source": {"component": FIELD_MANAGER},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "eventTime": now,
        }
        try:
            self.core.create_namespaced_event(involved["namespace"], body, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    def ready_replicas(self, name: str, namespace: str) -> int | None:
        """The Deployment's Ready replicas, or None when it does not exist."""
        try:
            deployment = self.apps.read_namespaced_deployment(
                name, namespace, _request_timeout=REQUEST_TIMEOUT
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return int(deployment.status.ready_replicas or 0)

    def service_url(self, name: str, namespace: str) -> str | None:
        """`http://host[:port]` of the Service's load-balancer ingress, or its cluster DNS name."""
        try:
            service = self.core.read_namespaced_service(name, namespace, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        port = int(service.spec.ports[0].port)
        suffix = "" if port == 80 else f":{port}"
        if service.spec.type == "LoadBalancer":
            ingress = (service.status.load_balancer.ingress or []) if service.status.load_balancer else []
            if not ingress:
                return None
            host = ingress[0].ip or ingress[0].hostname
            return f"http://{host}{suffix}" if host else None
        return f"http://{name}.{namespace}.svc{suffix}"

    def replicas(self, name: str, namespace: str) -> int | None:
        """The Deployment's wanted replicas (its scale subresource), or None when it does not exist."""
        try:
            scale = self.apps.read_namespaced_deployment_scale(
                name, namespace, _request_timeout=REQUEST_TIMEOUT
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return int(scale.spec.replicas or 0)

    def scale(self, name: str, namespace: str, replicas: int, *, owner_uid: str | None = None) -> bool:
        """Through the scale subresource; a Deployment already gone is fine. With `owner_uid`, a
        Deployment that is not that sale's (ownership.py) is left alone: False."""
        if owner_uid is not None:
            owners = self.owners({"kind": "Deployment", "metadata": {"name": name, "namespace": namespace}})
            if owners is not None and not is_own(owners, owner_uid):
                return False
        try:
            self.apps.patch_namespaced_deployment_scale(
                name, namespace, {"spec": {"replicas": replicas}}, _request_timeout=REQUEST_TIMEOUT
            )
        except ApiException as error:
            if error.status != 404:
                raise
        return True

    def statefulset_exists(self, name: str, namespace: str) -> bool:
        try:
            self.apps.read_namespaced_stateful_set(name, namespace, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    def pod_count(self, namespace: str, selector: str) -> int:
        pods = self.core.list_namespaced_pod(
            namespace, label_selector=selector, _request_timeout=REQUEST_TIMEOUT
        )
        return len(pods.items)


def _pointer(key: str) -> str:
    """A JSON Pointer token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")
