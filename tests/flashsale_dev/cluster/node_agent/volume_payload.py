"""What files a configMap, secret, downwardAPI or projected volume holds (pure functions).

As in the kubelet: every key becomes a file unless `items` picks keys and names their paths; modes
come from the item, else `defaultMode` (0644); a missing object or key is an error unless `optional`.
The objects come through `get` (raw API dicts, None when absent) and ServiceAccount tokens through
`token` (audience, expirationSeconds) -> token, so these functions never touch the API themselves.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from flashsale_dev.cluster.node_agent.atomic_writer import FileProjection
from flashsale_dev.cluster.node_agent.envvars import EnvError

Getter = Callable[[str, str], Mapping[str, Any] | None]  # (kind, name) -> the object, or None
TokenSource = Callable[[str, int], str]  # (audience, expirationSeconds) -> a token for the pod
DEFAULT_MODE = 0o644
DEFAULT_TOKEN_SECONDS = 3600  # the API's default for a projected serviceAccountToken

_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")
FILE_VOLUMES = ("configMap", "secret", "downwardAPI", "projected")


def object_bytes(kind: str, obj: Mapping[str, Any]) -> dict[str, bytes]:
    """A Secret's data (base64 in the API) or a ConfigMap's data and binaryData, as file contents."""
    if kind == "Secret":
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        return {**data, **{k: v.encode() for k, v in (obj.get("stringData") or {}).items()}}
    binary = {k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()}
    return {**binary, **{k: v.encode() for k, v in (obj.get("data") or {}).items()}}


def _keys_payload(
    kind: str, name: str, source: Mapping[str, Any], get: Getter, default_mode: int
) -> dict[str, FileProjection]:
    obj = get(kind, name)
    optional = bool(source.get("optional", False))
    if obj is None:
        if optional:
            return {}
        raise EnvError(f'{kind.lower()} "{name}" not found')
    data = object_bytes(kind, obj)
    items = source.get("items")
    if not items:
        return {key: FileProjection(value, default_mode) for key, value in data.items()}
    payload = {}
    for item in items:
        key = item.get("key", "")
        if key not in data:
            if optional:
                continue
            raise EnvError(f"{kind.lower()} {name}: references non-existent key {key!r}")
        payload[item.get("path") or key] = FileProjection(data[key], item.get("mode", default_mode))
    return payload


def format_map(values: Mapping[str, str]) -> str:
    """The kubelet's rendering of labels and annotations: sorted `key="value"` lines."""
    return "\n".join(f"{key}={json.dumps(values[key], ensure_ascii=False)}" for key in sorted(values))


def downward_value(pod: Mapping[str, Any], field_path: str) -> str:
    meta = pod.get("metadata") or {}
    simple = {"metadata.name": "name", "metadata.namespace": "namespace", "metadata.uid": "uid"}
    if field_path in simple:
        return str(meta.get(simple[field_path], ""))
    if field_path in ("metadata.labels", "metadata.annotations"):
        return format_map(meta.get(field_path.split(".")[1]) or {})
    subscript = _SUBSCRIPT.match(field_path)
    if subscript:
        return str((meta.get(subscript.group(1)) or {}).get(subscript.group(2), ""))
    raise EnvError(f"downwardAPI fieldRef {field_path!r} is not supported by the node agent")


def _downward_payload(
    items: list[Mapping[str, Any]], pod: Mapping[str, Any], default_mode: int
) -> dict[str, FileProjection]:
    payload = {}
    for item in items:
        if "fieldRef" not in item:
            raise EnvError("downwardAPI resourceFieldRef is not supported by the node agent")
        value = downward_value(pod, item["fieldRef"].get("fieldPath", ""))
        payload[item["path"]] = FileProjection(value.encode(), item.get("mode", default_mode))
    return payload


def _projected_payload(
    projected: Mapping[str, Any], pod: Mapping[str, Any], get: Getter, token: TokenSource
) -> dict[str, FileProjection]:
    default_mode = projected.get("defaultMode", DEFAULT_MODE)
    payload: dict[str, FileProjection] = {}
    for source in projected.get("sources") or []:
        if "secret" in source:
            payload.update(_keys_payload("Secret", source["secret"].get("name", ""), source["secret"], get,
                                         default_mode))  # fmt: skip
        elif "configMap" in source:
            ref = source["configMap"]
            payload.update(_keys_payload("ConfigMap", ref.get("name", ""), ref, get, default_mode))
        elif "downwardAPI" in source:
            payload.update(_downward_payload(source["downwardAPI"].get("items") or [], pod, default_mode))
        elif "serviceAccountToken" in source:
            ref = source["serviceAccountToken"]
            seconds = int(ref.get("expirationSeconds") or DEFAULT_TOKEN_SECONDS)
            value = token(ref.get("audience") or "", seconds)
            payload[ref["path"]] = FileProjection(value.encode(), default_mode)
        else:
            raise EnvError(f"projected source {sorted(source)} is not supported by the node agent")
    return payload


def volume_payload(
    volume: Mapping[str, Any], pod: Mapping[str, Any], get: Getter, token: TokenSource
) -> dict[str, FileProjection]:
    """The files of one volume of a FILE_VOLUMES kind."""
    if "secret" in volume:
        source = volume["secret"]
        mode = source.get("defaultMode", DEFAULT_MODE)
        return _keys_payload("Secret", source.get("secretName", ""), source, get, mode)
    if "configMap" in volume:
        source = volume["configMap"]
        mode = source.get("defaultMode", DEFAULT_MODE)
        return _keys_payload("ConfigMap", source.get("name", ""), source, get, mode)
    if "downwardAPI" in volume:
        source = volume["downwardAPI"]
        return _downward_payload(source.get("items") or [], pod, source.get("defaultMode", DEFAULT_MODE))
    if "projected" in volume:
        return _projected_payload(volume["projected"], pod, get, token)
    raise EnvError(f"volume {volume.get('name')!r}: not a file volume")
