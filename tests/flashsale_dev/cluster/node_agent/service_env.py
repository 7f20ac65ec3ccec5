"""The Docker-link-style variables the kubelet sets for Services (pure): KUBERNETES_SERVICE_HOST & co.

Every container gets those of the `kubernetes` Service in `default` (how in-cluster clients find the
apiserver), plus those of every Service in its own namespace unless `enableServiceLinks: false`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MASTER_SERVICE = ("default", "kubernetes")


def _name(text: str) -> str:
    return text.upper().replace("-", "_").replace(".", "_")


def one_service_env(service: Mapping[str, Any]) -> dict[str, str]:
    spec = service.get("spec") or {}
    ip = spec.get("clusterIP") or ""
    ports = spec.get("ports") or []
    if not ip or ip == "None" or not ports:
        return {}
    prefix = _name((service.get("metadata") or {}).get("name", ""))
    env = {f"{prefix}_SERVICE_HOST": ip, f"{prefix}_SERVICE_PORT": str(ports[0]["port"])}
    first_protocol = (ports[0].get("protocol") or "TCP").lower()
    env[f"{prefix}_PORT"] = f"{first_protocol}://{ip}:{ports[0]['port']}"
    for port in ports:
        number, protocol = str(port["port"]), (port.get("protocol") or "TCP")
        if port.get("name"):
            env[f"{prefix}_SERVICE_PORT_{_name(port['name'])}"] = number
        base = f"{prefix}_PORT_{number}_{protocol.upper()}"
        env[base] = f"{protocol.lower()}://{ip}:{number}"
        env[f"{base}_PROTO"] = protocol.lower()
        env[f"{base}_PORT"] = number
        env[f"{base}_ADDR"] = ip
    return env


def service_env(
    pod: Mapping[str, Any], own_services: Iterable[Mapping[str, Any]], master: Mapping[str, Any] | None
) -> dict[str, str]:
    """The variables for a pod; `own_services` are those of its namespace, `master` default/kubernetes."""
    env: dict[str, str] = {}
    if (pod.get("spec") or {}).get("enableServiceLinks", True) is not False:
        for service in sorted(own_services, key=lambda s: str((s.get("metadata") or {}).get("name"))):
            env.update(one_service_env(service))
    if master is not None:
        env.update(one_service_env(master))  # set in every namespace: the apiserver's address
    return env
