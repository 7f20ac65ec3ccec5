"""The few API calls the agent makes, on plain JSON dicts (the API's own camelCase shapes).

Objects are read raw (`_preload_content=False`) so the pure modules see what `kubectl get -o json`
shows, and patches name their content type: strategic merge, as the kubelet sends them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import kubernetes

from flashsale_dev.cluster.node_agent.envvars import EnvError, Lookup, decode_config_map, decode_secret
from flashsale_dev.cluster.node_agent.tokens import PodIdentity

STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
TIMEOUT = (5, 15)  # connect, read: a stalled apiserver must not stall the agent's threads for long


def api_client(kubeconfig: str) -> kubernetes.client.ApiClient:
    return kubernetes.config.new_client_from_config(config_file=kubeconfig)


def raw(response: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(response.data)
    return data


def is_status(error: Exception, *codes: int) -> bool:
    return isinstance(error, kubernetes.client.ApiException) and error.status in codes


def secret_lookup(core: kubernetes.client.CoreV1Api, namespace: str) -> Lookup:
    """Secrets and ConfigMaps of one namespace, read when a container starts (as the kubelet does)."""

    def lookup(kind: str, name: str) -> Mapping[str, str] | None:
        read = core.read_namespaced_secret if kind == "Secret" else core.read_namespaced_config_map
        try:
            obj = raw(read(name, namespace, _preload_content=False, _request_timeout=TIMEOUT))
        except Exception as error:
            if is_status(error, 404):
                return None
            raise EnvError(f"cannot read {kind.lower()} {namespace}/{name}: {error}") from error
        return decode_secret(obj) if kind == "Secret" else decode_config_map(obj)

    return lookup


def patch_pod_status(
    core: kubernetes.client.CoreV1Api, namespace: str, name: str, uid: str, status: Mapping[str, Any]
) -> None:
    # The uid in the patch guards against a namesake created since: the API refuses the patch (422).
    body = {"metadata": {"uid": uid}, "status": status}
    core.patch_namespaced_pod_status(
        name, namespace, body, _content_type=STRATEGIC, _preload_content=False, _request_timeout=TIMEOUT
    )


def delete_pod(core: kubernetes.client.CoreV1Api, namespace: str, name: str, uid: str) -> None:
    """The kubelet's final delete, once the processes are gone: grace 0, this very pod only."""
    core.delete_namespaced_pod(
        name,
        namespace,
        body=kubernetes.client.V1DeleteOptions(
            grace_period_seconds=0, preconditions=kubernetes.client.V1Preconditions(uid=uid)
        ),
        grace_period_seconds=0,
        _preload_content=False,
        _request_timeout=TIMEOUT,
    )


def read_object(
    core: kubernetes.client.CoreV1Api, kind: str, namespace: str, name: str
) -> dict[str, Any] | None:
    """A Secret, ConfigMap, Service, PVC or PV (namespace ignored) as a raw dict; None if absent."""
    read: Any = {
        "Secret": core.read_namespaced_secret,
        "ConfigMap": core.read_namespaced_config_map,
        "Service": core.read_namespaced_service,
        "PersistentVolumeClaim": core.read_namespaced_persistent_volume_claim,
    }.get(kind)
    try:
        if kind == "PersistentVolume":
            return raw(core.read_persistent_volume(name, _preload_content=False, _request_timeout=TIMEOUT))
        return raw(read(name, namespace, _preload_content=False, _request_timeout=TIMEOUT))
    except Exception as error:
        if is_status(error, 404):
            return None
        raise EnvError(f"cannot read {kind} {namespace}/{name}: {error}") from error


def list_services(core: kubernetes.client.CoreV1Api, namespace: str) -> list[dict[str, Any]]:
    try:
        listing = raw(
            core.list_namespaced_service(namespace, _preload_content=False, _request_timeout=TIMEOUT)
        )
    except Exception as error:
        raise EnvError(f"cannot list the services of {namespace}: {error}") from error
    return list(listing.get("items") or [])


def request_token(
    core: kubernetes.client.CoreV1Api, who: PodIdentity, audience: str, seconds: int
) -> tuple[str, float]:
    """A TokenRequest for the pod's ServiceAccount, bound to the pod; (token, expiry in epoch seconds)."""
    spec: dict[str, Any] = {
        "expirationSeconds": seconds,
        "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": who.pod, "uid": who.uid},
    }
    if audience:
        spec["audiences"] = [audience]
    try:
        answer = raw(core.create_namespaced_service_account_token(
            who.account, who.namespace, {"spec": spec}, _preload_content=False, _request_timeout=TIMEOUT
        ))  # fmt: skip
    except Exception as error:
        raise EnvError(
            f"cannot get a token for serviceaccount {who.namespace}/{who.account}: {error}"
        ) from error
    status = answer["status"]
    expires = datetime.fromisoformat(status["expirationTimestamp"].replace("Z", "+00:00")).timestamp()
    return str(status["token"]), expires
