"""The operator's own calls to the Kubernetes API (kopf does the watching; this does the writing).

Children go by server-side apply under one field manager, so re-applying is a no-op and a field the
operator stopped rendering is removed. The sale's Secret is the exception: it is created once with a
fresh order-path key and afterwards only patched with the platform's shared values, since the
operator may write Secrets but never read them. Synchronous client; called through
`asyncio.to_thread`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import kubernetes
from kubernetes.client.exceptions import ApiException

from flashsale_operator.spec import GROUP, PLURAL, VERSION

FIELD_MANAGER: Final = "flashsale-operator"
APPLY: Final = "application/apply-patch+yaml"
MERGE: Final = "application/merge-patch+json"
REQUEST_TIMEOUT: Final = 15


def api_client() -> kubernetes.client.ApiClient:
    """In a pod: its ServiceAccount (in-cluster config); elsewhere: the current kubeconfig."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        kubernetes.config.load_incluster_config()
    else:
        kubernetes.config.load_kube_config()
    return kubernetes.client.ApiClient()


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
        }

    def create_or_patch_secret(self, created: dict[str, Any], shared: dict[str, Any]) -> bool:
        """Creates `created` (True), or when it exists patches in `shared` only (False).

        `shared`'s `data` may name entries to remove (null values); `stringData` sets the others."""
        namespace = created["metadata"]["namespace"]
        try:
            self.core.create_namespaced_secret(namespace, created, _request_timeout=REQUEST_TIMEOUT)
            return True
        except ApiException as error:
            if error.status != 409:
                raise
        name = shared["metadata"]["name"]
        patch = {key: shared[key] for key in ("data", "stringData") if key in shared}  # data: removals
        self.core.patch_namespaced_secret(name, namespace, patch, _request_timeout=REQUEST_TIMEOUT)
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

    def scale(self, name: str, namespace: str, replicas: int) -> None:
        """Through the scale subresource; a Deployment already gone is fine."""
        try:
            self.apps.patch_namespaced_deployment_scale(
                name, namespace, {"spec": {"replicas": replicas}}, _request_timeout=REQUEST_TIMEOUT
            )
        except ApiException as error:
            if error.status != 404:
                raise

    def pod_count(self, namespace: str, selector: str) -> int:
        pods = self.core.list_namespaced_pod(
            namespace, label_selector=selector, _request_timeout=REQUEST_TIMEOUT
        )
        return len(pods.items)
