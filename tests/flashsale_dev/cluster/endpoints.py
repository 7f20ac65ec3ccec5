"""A Service's endpoints, computed from Pods as the EndpointSlice controller would (pure functions).

The controller-manager cannot do it here: EndpointSlices refuse loopback addresses, and every pod
that really serves has one (127.x). So the service proxy, the LoadBalancer edge and the DNS hosts
file all take their endpoints from these functions instead. Objects are the API's plain JSON dicts.

Rules kept from the EndpointSlice controller: only Services with a selector have endpoints; a pod
counts if it is in the Service's namespace, matches the selector, has a podIP, is not terminating
and not finished; it serves if its Ready condition is True (or the Service publishes not-ready
addresses); a named targetPort is looked up among the pod's containerPorts (a pod without it is
left out for that port); a missing targetPort means the Service port itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Obj = Mapping[str, Any]
KUBERNETES_SERVICE = ("default", "kubernetes")


@dataclass(frozen=True, order=True)
class Backend:
    ip: str
    port: int


def selector(service: Obj) -> dict[str, str]:
    return dict((service.get("spec") or {}).get("selector") or {})


def is_headless(service: Obj) -> bool:
    return (service.get("spec") or {}).get("clusterIP") == "None"


def cluster_ip(service: Obj) -> str | None:
    ip = (service.get("spec") or {}).get("clusterIP")
    return ip if ip and ip != "None" else None


def key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def is_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def selected_pods(service: Obj, pods: Iterable[Obj]) -> list[Obj]:
    """The pods that are endpoints of `service`, sorted by name (stable output for renderers)."""
    wanted = selector(service)
    if not wanted:
        return []
    namespace = key(service)[0]
    publish_not_ready = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    chosen = []
    for pod in pods:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        labels = meta.get("labels") or {}
        if meta.get("namespace") != namespace or any(labels.get(k) != v for k, v in wanted.items()):
            continue
        if not status.get("podIP") or meta.get("deletionTimestamp"):
            continue
        if status.get("phase") in ("Succeeded", "Failed"):
            continue
        if publish_not_ready or is_ready(pod):
            chosen.append(pod)
    return sorted(chosen, key=key)


def target_port(service_port: Obj, pod: Obj) -> int | None:
    """The pod's port for one Service port: a number, a named containerPort, or the port itself."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return int(target)
    protocol = service_port.get("protocol", "TCP")
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and port.get("protocol", "TCP") == protocol:
                return int(port["containerPort"])
    return None


def port_backends(service: Obj, service_port: Obj, pods: Iterable[Obj]) -> list[Backend]:
    """Where traffic for one port of `service` goes: podIP:targetPort of each serving pod."""
    backends = []
    for pod in selected_pods(service, pods):
        port = target_port(service_port, pod)
        if port is not None:
            backends.append(Backend(pod["status"]["podIP"], port))
    return backends


def pod_hostname(pod: Obj, service: Obj) -> str | None:
    """A pod's own DNS label under a headless Service: set when spec.subdomain names the Service
    (a StatefulSet's pods get hostname = pod name and subdomain = serviceName)."""
    spec = pod.get("spec") or {}
    if spec.get("subdomain") != key(service)[1]:
        return None
    hostname = spec.get("hostname")
    return str(hostname) if hostname else None


def tcp_routes(
    services: Iterable[Obj], pods: Iterable[Obj], apiserver: Backend
) -> dict[tuple[str, int], list[Backend]]:
    """What the service proxy serves: (ClusterIP, port) -> backends, for every TCP Service port.

    `default/kubernetes` goes to the apiserver's real address: the apiserver runs with
    --endpoint-reconciler-type=none, so nothing else says where it is. Services without a selector
    (kube-dns, whose server listens on the ClusterIP itself) are not proxied.
    """
    pods = list(pods)
    routes: dict[tuple[str, int], list[Backend]] = {}
    for service in services:
        ip = cluster_ip(service)
        if ip is None:
            continue
        for service_port in (service.get("spec") or {}).get("ports") or []:
            if service_port.get("protocol", "TCP") != "TCP":
                continue
            if key(service) == KUBERNETES_SERVICE:
                routes[(ip, int(service_port["port"]))] = [apiserver]
            elif selector(service):
                routes[(ip, int(service_port["port"]))] = port_backends(service, service_port, pods)
    return routes
