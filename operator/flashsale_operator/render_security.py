"""The security contexts of every pod the operator creates, and the writable paths they need (pure).

Each sale pod (gateway, consumer, a dedicated queue's broker) runs as a numeric non-root user with
the RuntimeDefault seccomp profile; each container with a read-only root file system, no privilege
escalation and no capability. What a process must write goes to a volume: /tmp, an emptyDir in
every container (Python's tempfile, the JVM's hsperfdata, the broker's generated server.properties),
and the broker's log on its claim. Nothing else needs to be writable: the images' bytecode is
precompiled (PYTHONDONTWRITEBYTECODE set).

The renderers call `harden_pod` on each pod spec they build; a unit test walks every rendered
object for pod specs, so a workload added later cannot forget it. manifests/operator.yaml carries
the same values for the operator's own pod (the same test reads it).
"""

from __future__ import annotations

import copy
from typing import Any, Final, TypedDict

# The images' USER (manifests/images/*/Containerfile): numeric, so the kubelet can check runAsNonRoot
# without reading /etc/passwd inside the image.
RUN_AS_USER: Final = 10001
RUN_AS_GROUP: Final = 10001

TMP_VOLUME: Final = "tmp"
TMP_PATH: Final = "/tmp"  # the container's own, an emptyDir
# A bounded scratch: a process filling /tmp is evicted instead of filling the node's disk.
TMP_SIZE_LIMIT: Final = "64Mi"


class SeccompProfile(TypedDict):
    type: str


class PodSecurityContext(TypedDict):
    runAsNonRoot: bool
    runAsUser: int
    runAsGroup: int
    fsGroup: int
    fsGroupChangePolicy: str
    seccompProfile: SeccompProfile


class Capabilities(TypedDict):
    drop: list[str]


class ContainerSecurityContext(TypedDict):
    readOnlyRootFilesystem: bool
    allowPrivilegeEscalation: bool
    capabilities: Capabilities


def pod_security_context() -> PodSecurityContext:
    """The pod's. `fsGroup` because the volumes must be usable by the non-root user: the kubelet gives
    their files to that group (the 0400 Secret files become 0440, readable by it; the broker's claim
    writable), walking a volume only when its root does not already belong to the group."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_GROUP,
        "fsGroup": RUN_AS_GROUP,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> ContainerSecurityContext:
    return {
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }


def tmp_volume() -> dict[str, Any]:
    return {"name": TMP_VOLUME, "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}}


def tmp_mount() -> dict[str, Any]:
    return {"name": TMP_VOLUME, "mountPath": TMP_PATH}


def harden_pod(pod_spec: dict[str, Any]) -> dict[str, Any]:
    """`pod_spec` with the security contexts set and /tmp an emptyDir in every container (a copy)."""
    hardened = copy.deepcopy(pod_spec)
    hardened["securityContext"] = pod_security_context()
    for container in [*hardened.get("initContainers", []), *hardened["containers"]]:
        container["securityContext"] = container_security_context()
        container["volumeMounts"] = [*container.get("volumeMounts", []), tmp_mount()]
    hardened["volumes"] = [*hardened.get("volumes", []), tmp_volume()]
    return hardened
