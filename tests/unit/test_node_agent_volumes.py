"""Volumes become files as the kubelet makes them; updates swap them atomically; tokens are renewed."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from flashsale_dev.cluster.node_agent.atomic_writer import (
    DATA,
    FileProjection,
    PayloadError,
    write_payload,
)
from flashsale_dev.cluster.node_agent.dns_files import ResolvConf
from flashsale_dev.cluster.node_agent.envvars import EnvError
from flashsale_dev.cluster.node_agent.tokens import PodIdentity, Token, TokenCache
from flashsale_dev.cluster.node_agent.volume_payload import format_map, volume_payload
from flashsale_dev.cluster.node_agent.volumes import NodeVolumes

pytestmark = pytest.mark.unit

POD: dict[str, Any] = {
    "metadata": {"name": "gw-1", "namespace": "sale", "uid": "u-1", "labels": {"b": "2", "a": 'say "hi"'}},
    "spec": {"serviceAccountName": "gateway"},
}
OBJECTS: dict[tuple[str, str], dict[str, Any]] = {
    ("Secret", "db"): {"data": {"password": base64.b64encode(b"s3cret").decode(), "user": "c2hvcA=="}},
    ("ConfigMap", "app"): {
        "data": {"stock": "100"},
        "binaryData": {"logo": base64.b64encode(b"\x00\x01").decode()},
    },
    ("ConfigMap", "kube-root-ca.crt"): {"data": {"ca.crt": "CERT"}},
}
TOKENS: list[tuple[str, int]] = []


def get(kind: str, name: str) -> Mapping[str, Any] | None:
    return OBJECTS.get((kind, name))


def token(audience: str, seconds: int) -> str:
    TOKENS.append((audience, seconds))
    return f"token-for-{audience or 'api'}"


def files(volume: dict[str, Any]) -> dict[str, tuple[bytes, int]]:
    return {path: (p.data, p.mode) for path, p in volume_payload(volume, POD, get, token).items()}


def test_a_secret_becomes_one_file_per_key_with_the_default_mode() -> None:
    assert files({"name": "v", "secret": {"secretName": "db"}}) == {
        "password": (b"s3cret", 0o644),
        "user": (b"shop", 0o644),
    }
    assert files({"name": "v", "secret": {"secretName": "db", "defaultMode": 0o400}})["user"] == (
        b"shop",
        0o400,
    )


def test_items_pick_keys_name_their_paths_and_set_their_modes() -> None:
    volume = {"name": "v", "configMap": {"name": "app", "items": [
        {"key": "stock", "path": "counts/stock", "mode": 0o600}, {"key": "logo", "path": "logo.bin"},
    ]}}  # fmt: skip
    assert files(volume) == {"counts/stock": (b"100", 0o600), "logo.bin": (b"\x00\x01", 0o644)}


def test_a_missing_object_or_key_is_an_error_unless_optional() -> None:
    with pytest.raises(EnvError, match='secret "nope" not found'):
        files({"name": "v", "secret": {"secretName": "nope"}})
    assert files({"name": "v", "secret": {"secretName": "nope", "optional": True}}) == {}
    missing_key = {"name": "app", "items": [{"key": "gone", "path": "gone"}]}
    with pytest.raises(EnvError, match="non-existent key 'gone'"):
        files({"name": "v", "configMap": missing_key})
    assert files({"name": "v", "configMap": {**missing_key, "optional": True}}) == {}


def test_the_downward_api_renders_labels_sorted_and_quoted() -> None:
    assert format_map({"b": "2", "a": 'say "hi"'}) == 'a="say \\"hi\\""\nb="2"'
    volume = {"name": "v", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}, "mode": 0o444},
        {"path": "b", "fieldRef": {"fieldPath": "metadata.labels['b']"}},
    ]}}  # fmt: skip
    assert files(volume) == {
        "labels": (b'a="say \\"hi\\""\nb="2"', 0o644),
        "ns": (b"sale", 0o444),
        "b": (b"2", 0o644),
    }


def test_the_service_account_volume_projects_token_ca_and_namespace() -> None:
    TOKENS.clear()
    volume = {"name": "kube-api-access-x", "projected": {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
    ]}}  # fmt: skip
    assert files(volume) == {
        "token": (b"token-for-api", 0o644),
        "ca.crt": (b"CERT", 0o644),
        "namespace": (b"sale", 0o644),
    }
    assert TOKENS == [("", 3607)]
    audience = {
        "name": "v",
        "projected": {"sources": [{"serviceAccountToken": {"audience": "vault", "path": "t"}}]},
    }
    assert files(audience) == {"t": (b"token-for-vault", 0o644)}
    assert TOKENS[-1] == ("vault", 3600)


def visible(volume: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in volume.iterdir() if not p.name.startswith("..")}


def test_the_atomic_writer_swaps_all_files_at_once_behind_stable_names(tmp_path: Path) -> None:
    volume = tmp_path / "v"
    assert write_payload(volume, {"a": FileProjection(b"1"), "dir/b": FileProjection(b"2", 0o600)})
    first = os.readlink(volume / DATA)
    assert os.readlink(volume / "a") == f"{DATA}/a"
    assert (volume / "dir" / "b").read_text() == "2"
    assert ((volume / "dir" / "b").stat().st_mode & 0o777) == 0o600
    assert not write_payload(volume, {"a": FileProjection(b"1"), "dir/b": FileProjection(b"2", 0o600)})
    assert os.readlink(volume / DATA) == first  # nothing changed: nothing rewritten

    held = os.open(volume, os.O_RDONLY)  # a bind mount holds the directory, not the data directory
    try:
        assert write_payload(volume, {"a": FileProjection(b"one"), "c": FileProjection(b"3")})
        assert Path(f"/proc/self/fd/{held}/a").read_text() == "one"
    finally:
        os.close(held)
    assert visible(volume) == {"a": "one", "c": "3"}  # "dir" is gone with its key
    assert not (volume / first).exists()  # the old data directory removed


def test_the_atomic_writer_refuses_paths_that_leave_the_volume(tmp_path: Path) -> None:
    for path in ("../x", "/etc/passwd", "a/../../x", "..data"):
        with pytest.raises(PayloadError):
            write_payload(tmp_path / "v", {path: FileProjection(b"x")})


def test_a_token_is_renewed_at_80_percent_of_its_lifetime_or_after_a_day() -> None:
    token = Token("t", expires_at=1000.0 + 600, seconds=600)
    assert not token.needs_refresh(1000.0 + 479)
    assert token.needs_refresh(1000.0 + 480)
    year = Token("t", expires_at=1000.0 + 365 * 86400, seconds=365 * 86400)
    assert not year.needs_refresh(1000.0 + 86399)
    assert year.needs_refresh(1000.0 + 86400)


def test_the_token_cache_asks_once_per_pod_audience_and_lifetime_until_renewal() -> None:
    now = [1000.0]
    asked: list[tuple[PodIdentity, str, int]] = []

    def request(who: PodIdentity, audience: str, seconds: int) -> tuple[str, float]:
        asked.append((who, audience, seconds))
        return f"t{len(asked)}", now[0] + seconds

    cache = TokenCache(request, lambda: now[0])
    who = PodIdentity("sale", "gateway", "gw-1", "u-1")
    assert cache.get(who, "", 600) == cache.get(who, "", 600) == "t1"
    assert cache.get(who, "vault", 600) == "t2"
    now[0] += 500
    assert cache.get(who, "", 600) == "t3"
    cache.forget("u-1")
    assert cache.get(who, "vault", 600) == "t4"
    assert len(asked) == 4


class FakeApi:
    """Objects by (kind, namespace, name), as NodeVolumes reads them."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {
            ("Service", "kube-system", "kube-dns"): {"spec": {"clusterIP": "127.7.0.10"}},
            ("ConfigMap", "sale", "cfg"): {"data": {"stock": "100"}},
            ("PersistentVolumeClaim", "sale", "data"): {"status": {"phase": "Pending"}, "spec": {}},
        }

    def read(self, kind: str, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.objects.get((kind, namespace, name))


def node_volumes(tmp_path: Path, api: FakeApi) -> NodeVolumes:
    tokens = TokenCache(lambda who, audience, seconds: ("t", 1e12), lambda: 0.0)
    return NodeVolumes(tmp_path, api.read, tokens, ResolvConf(("10.0.0.2",), ("corp.example",)))


VOLUME_POD: dict[str, Any] = {
    "metadata": {"name": "gw-1", "namespace": "sale", "uid": "u-1"},
    "spec": {"volumes": [
        {"name": "cache", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "cfg"}},
        {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
    ]},
}  # fmt: skip


def test_a_containers_mounts_are_the_pod_files_then_its_volumes(tmp_path: Path) -> None:
    api = FakeApi()
    node = node_volumes(tmp_path, api)
    volumes = node.pod(VOLUME_POD, "127.1.2.3")
    container = {"volumeMounts": [
        {"name": "cache", "mountPath": "/cache", "subPath": "a"},
        {"name": "cfg", "mountPath": "/etc/cfg"},
    ]}  # fmt: skip
    binds = {b["target"]: (b["source"], b["read_only"]) for b in volumes.mounts(container)}
    pod_dir = tmp_path / "kubelet-pods" / "u-1"
    assert binds == {
        "/etc/hosts": (str(pod_dir / "etc-hosts"), False),
        "/etc/resolv.conf": (str(pod_dir / "resolv.conf"), False),
        "/cache": (str((pod_dir / "volumes" / "cache" / "a").resolve()), False),
        "/etc/cfg": (str(pod_dir / "volumes" / "cfg"), True),  # file volumes: always read-only
    }
    assert "nameserver 127.7.0.10\n" in (pod_dir / "resolv.conf").read_text()
    assert (pod_dir / "volumes" / "cfg" / "stock").read_text() == "100"

    api.objects["ConfigMap", "sale", "cfg"] = {"data": {"stock": "99"}}
    volumes.refresh()  # what the sync thread does every SYNC_PERIOD
    assert (pod_dir / "volumes" / "cfg" / "stock").read_text() == "99"
    node.remove("u-1")
    volumes.refresh()
    assert not pod_dir.exists()  # nothing writes there again once the pod is gone


def test_a_container_waits_for_the_cluster_dns_and_for_its_claim(tmp_path: Path) -> None:
    api = FakeApi()
    del api.objects["Service", "kube-system", "kube-dns"]
    volumes = node_volumes(tmp_path, api).pod(VOLUME_POD, "127.1.2.3")
    with pytest.raises(EnvError, match="kube-system/kube-dns"):
        volumes.mounts({})
    api.objects["Service", "kube-system", "kube-dns"] = {"spec": {"clusterIP": "127.7.0.10"}}
    claim = {"volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    with pytest.raises(EnvError, match='"data" is not bound yet'):
        volumes.mounts(claim)
    api.objects["PersistentVolumeClaim", "sale", "data"] = {
        "status": {"phase": "Bound"},
        "spec": {"volumeName": "pv-1"},
    }
    api.objects["PersistentVolume", "", "pv-1"] = {"spec": {"hostPath": {"path": "/srv/pv-1"}}}
    assert volumes.mounts(claim)[-1] == {"source": "/srv/pv-1", "target": "/data", "read_only": False}
    with pytest.raises(EnvError, match=r"without '\.\.'"):
        volumes.mounts({"volumeMounts": [{"name": "cache", "mountPath": "/c", "subPath": "../../etc"}]})
