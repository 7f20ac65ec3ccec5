"""A container's environment is resolved as the kubelet does it, without any API at hand."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import pytest

from flashsale_dev.cluster.node_agent.envvars import (
    EnvError,
    decode_secret,
    expand,
    field_value,
    identity_env,
    process_env,
    resolve_env,
)

pytestmark = pytest.mark.unit

POD: dict[str, Any] = {
    "metadata": {
        "name": "gateway-7d9f",
        "namespace": "sale-42",
        "uid": "0a1b-2c3d",
        "labels": {"app": "gateway", "flashsale.dev/sale": "summer"},
        "annotations": {"note": "hello"},
    },
    "spec": {"nodeName": "flashsale-2", "serviceAccountName": "gateway"},
    "status": {},
}
OBJECTS = {
    ("Secret", "db"): {"password": "s3cret", "user": "shop"},
    ("ConfigMap", "settings"): {"STOCK": "100", "LIMIT": "2", "not a name": "skipped"},
}


def lookup(kind: str, name: str) -> Mapping[str, str] | None:
    return OBJECTS.get((kind, name))


def resolve(container: dict[str, Any], defined: Mapping[str, str] | None = None) -> dict[str, str]:
    return resolve_env(POD, container, lookup, pod_ip="127.8.9.10", host_ip="127.0.0.1", defined=defined)


def test_expansion_follows_kubernetes_rules() -> None:
    env = {"A": "one", "B": "two"}
    assert expand("$(A)-$(B)", env) == "one-two"
    assert expand("$(MISSING) stays", env) == "$(MISSING) stays"
    assert expand("$$(A) is escaped, $$ is a dollar", env) == "$(A) is escaped, $ is a dollar"
    assert expand("$A and $(A", env) == "$A and $(A"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("metadata.name", "gateway-7d9f"),
        ("metadata.namespace", "sale-42"),
        ("metadata.uid", "0a1b-2c3d"),
        ("metadata.labels['flashsale.dev/sale']", "summer"),
        ("metadata.annotations['note']", "hello"),
        ("spec.nodeName", "flashsale-2"),
        ("spec.serviceAccountName", "gateway"),
        ("status.podIP", "127.8.9.10"),
        ("status.hostIP", "127.0.0.1"),
    ],
)
def test_field_refs_read_the_pod(path: str, value: str) -> None:
    assert field_value(POD, path, "127.8.9.10", "127.0.0.1") == value


def test_an_unsupported_field_ref_is_a_config_error() -> None:
    with pytest.raises(EnvError, match="not supported"):
        field_value(POD, "spec.nope", "127.8.9.10", "127.0.0.1")


def test_values_refs_and_expansion_in_order() -> None:
    env = resolve({
        "env": [
            {"name": "USER", "valueFrom": {"secretKeyRef": {"name": "db", "key": "user"}}},
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "DSN", "value": "postgresql://$(USER):$(PASSWORD)@$(POD_IP)/shop"},
            {"name": "STOCK", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "STOCK"}}},
            {"name": "ME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ]
    }, defined={"POD_IP": "127.8.9.10"})  # fmt: skip
    assert env["DSN"] == "postgresql://shop:s3cret@127.8.9.10/shop"
    assert env["STOCK"] == "100"
    assert env["ME"] == "gateway-7d9f"


def test_env_from_with_prefix_skips_invalid_names_and_env_overrides_it() -> None:
    env = resolve({
        "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "SALE_"}, {"secretRef": {"name": "db"}}],
        "env": [{"name": "SALE_LIMIT", "value": "5"}],
    })  # fmt: skip
    assert env == {"SALE_STOCK": "100", "SALE_LIMIT": "5", "password": "s3cret", "user": "shop"}


def test_optional_references_that_are_absent_define_nothing() -> None:
    absent_secret = {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}}
    absent_key = {"configMapKeyRef": {"name": "settings", "key": "no", "optional": True}}
    env = resolve({
        "envFrom": [{"secretRef": {"name": "absent", "optional": True}}],
        "env": [{"name": "A", "valueFrom": absent_secret}, {"name": "B", "valueFrom": absent_key}],
    })  # fmt: skip
    assert env == {}


@pytest.mark.parametrize(
    ("value_from", "message"),
    [
        ({"secretKeyRef": {"name": "absent", "key": "k"}}, 'secret "absent" not found'),
        ({"configMapKeyRef": {"name": "absent", "key": "k"}}, 'configmap "absent" not found'),
        ({"configMapKeyRef": {"name": "settings", "key": "no"}}, "couldn't find key no"),
    ],
)
def test_required_references_that_are_absent_are_config_errors(
    value_from: dict[str, Any], message: str
) -> None:
    with pytest.raises(EnvError, match=message):
        resolve({"env": [{"name": "A", "valueFrom": value_from}]})
    with pytest.raises(EnvError, match="not found"):
        resolve({"envFrom": [{"configMapRef": {"name": "absent"}}]})


def test_secret_data_is_decoded() -> None:
    secret = {"data": {"token": base64.b64encode(b"abc").decode()}, "stringData": {"plain": "x"}}
    assert decode_secret(secret) == {"token": "abc", "plain": "x"}


def test_every_process_knows_its_pod_and_address_and_the_container_wins() -> None:
    identity = identity_env(POD, "127.8.9.10")
    assert identity == {"POD_IP": "127.8.9.10", "POD_NAME": "gateway-7d9f", "POD_NAMESPACE": "sale-42"}
    merged = process_env({"PATH": "/bin", "LANG": "C"}, {"LANG": "C.UTF-8", "X": "image"}, {"X": "container"})
    assert merged == {"PATH": "/bin", "LANG": "C.UTF-8", "X": "container"}
