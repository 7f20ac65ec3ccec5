"""A container's environment, resolved as the kubelet does it (pure functions).

Order, as in the kubelet: envFrom sources in turn, then `env` entries in turn, each value expanded
with `$(VAR)` against what is defined so far. Secrets and ConfigMaps come through `lookup`, which
returns the decoded data or None when the object does not exist.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from typing import Any

Lookup = Callable[[str, str], Mapping[str, str] | None]  # (kind "Secret"/"ConfigMap", name) -> data

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class EnvError(Exception):
    """A reference that cannot be resolved (yet): the kubelet's CreateContainerConfigError."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: `$$` escapes, unknown references stay as written."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        if text.startswith("$(", i):
            end = text.find(")", i + 2)
            if end != -1:
                out.append(env.get(text[i + 2 : end], text[i : end + 1]))
                i = end + 1
                continue
        out.append(text[i])
        i += 1
    return "".join(out)


def decode_secret(secret: Mapping[str, Any]) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode(errors="replace") for k, v in (secret.get("data") or {}).items()}
    return {**data, **(secret.get("stringData") or {})}


def decode_config_map(config_map: Mapping[str, Any]) -> dict[str, str]:
    return dict(config_map.get("data") or {})


def field_value(pod: Mapping[str, Any], path: str, pod_ip: str, host_ip: str) -> str:
    """The downward API's fieldRef; the pod IP is passed in since status may not carry it yet."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if path in simple:
        return str(simple[path])
    subscript = _SUBSCRIPT.match(path)
    if subscript:
        return str((meta.get(subscript.group(1)) or {}).get(subscript.group(2), ""))
    raise EnvError(f"fieldRef {path!r} is not supported by the node agent")


def _from_source(kind: str, ref: Mapping[str, Any], lookup: Lookup) -> Mapping[str, str] | None:
    data = lookup(kind, ref.get("name", ""))
    if data is None and not ref.get("optional", False):
        raise EnvError(f'{kind.lower()} "{ref.get("name", "")}" not found')
    return data


def _key_ref(kind: str, ref: Mapping[str, Any], lookup: Lookup) -> str | None:
    data = _from_source(kind, ref, lookup)
    if data is None:
        return None
    key = ref.get("key", "")
    if key not in data:
        if ref.get("optional", False):
            return None
        raise EnvError(f"couldn't find key {key} in {kind} {ref.get('name', '')}")
    return data[key]


def _value_from(
    source: Mapping[str, Any], pod: Mapping[str, Any], pod_ip: str, host_ip: str, lookup: Lookup
) -> str | None:
    if "fieldRef" in source:
        return field_value(pod, source["fieldRef"].get("fieldPath", ""), pod_ip, host_ip)
    if "secretKeyRef" in source:
        return _key_ref("Secret", source["secretKeyRef"], lookup)
    if "configMapKeyRef" in source:
        return _key_ref("ConfigMap", source["configMapKeyRef"], lookup)
    raise EnvError(f"valueFrom {sorted(source)} is not supported by the node agent")


def resolve_env(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    lookup: Lookup,
    *,
    pod_ip: str,
    host_ip: str,
    defined: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The container's own variables; `defined` (seen by `$(VAR)`, overridable) comes first."""
    env = dict(defined or {})
    for source in container.get("envFrom") or []:
        if "secretRef" in source:
            kind, ref = "Secret", source["secretRef"]
        elif "configMapRef" in source:
            kind, ref = "ConfigMap", source["configMapRef"]
        else:
            raise EnvError(f"envFrom {sorted(source)} is not supported by the node agent")
        data = _from_source(kind, ref, lookup) or {}
        prefix = source.get("prefix", "")
        # Like the kubelet, keys that are not valid variable names are skipped.
        env.update({prefix + k: v for k, v in data.items() if _ENV_NAME.match(prefix + k)})
    for var in container.get("env") or []:
        if "valueFrom" in var:
            value = _value_from(var["valueFrom"], pod, pod_ip, host_ip, lookup)
            if value is None:  # an optional reference that is absent: no variable at all
                continue
        else:
            value = expand(var.get("value", ""), env)
        env[var["name"]] = value
    return env


def identity_env(pod: Mapping[str, Any], pod_ip: str) -> dict[str, str]:
    """Set for every process: the project's manifests set these from the downward API."""
    meta = pod.get("metadata") or {}
    return {"POD_IP": pod_ip, "POD_NAME": meta.get("name", ""), "POD_NAMESPACE": meta.get("namespace", "")}


def process_env(
    base: Mapping[str, str], image_env: Mapping[str, str], container_env: Mapping[str, str]
) -> dict[str, str]:
    """What the process sees: base (PATH, HOSTNAME...), then the image's ENV, then the container's."""
    return {**base, **image_env, **container_env}
