"""Every pod the platform creates runs hardened: a numeric non-root user, RuntimeDefault seccomp, a
read-only root, no capability, no privilege escalation, /tmp an emptyDir.

The tests walk every rendered object (every child of every kind of sale, and the install manifests)
for pod specs, so a workload added later is checked without naming it here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from flashsale_operator.config import OperatorConfig
from flashsale_operator.render import SaleRef, children
from flashsale_operator.render_security import (
    RUN_AS_USER,
    TMP_PATH,
    container_security_context,
    harden_pod,
    pod_security_context,
)
from flashsale_operator.spec import parse_spec
from flashsale_sale import __version__

pytestmark = pytest.mark.unit

MANIFESTS = Path(__file__).parents[2] / "manifests"
REF = SaleRef(name="kettle", namespace="shop-sales", uid="6f1c2a9e-0b7d-4c1e-9a53-2d8e4f7b1c30")
# The defaults for everything but the platform's addresses and keys: the images among them.
PLATFORM: dict[str, Any] = {
    "redis_url": "redis://10.0.0.5:6379/0",
    "kafka_bootstrap_servers": "10.0.0.7:9092",
    "database_url": "postgresql://flashsale:x@10.0.0.9:5432/flashsale",
    "user_token_key": "platform-user-token-key-0123456789",
    "payment_key": "platform-payment-key-0123456789",
    "gateway_database_url": "postgresql://gw:x@10.0.0.9:5432/flashsale",
    "consumer_database_url": "postgresql://co:x@10.0.0.9:5432/flashsale",
}
CONFIG = OperatorConfig(**PLATFORM)
BASE_SPEC: dict[str, Any] = {
    "product": {"sku": "KETTLE-1", "name": "Copper kettle", "price": "49.00", "currency": "EUR"},
    "stock": 100,
    "perUserLimit": 1,
    "schedule": {"startsAt": "2030-11-11T11:11:00Z", "endsAt": "2030-11-11T12:11:00Z"},
    "paymentTimeoutSeconds": 900,
}
# One sale of each shape: every kind of child the operator renders appears in one of them.
SHAPES: dict[str, dict[str, Any]] = {
    "shared queue": {},
    "dedicated queue": {"queue": {"mode": "dedicated"}},
    "keda scaler": {"consumers": {"scaler": "keda"}},
}


def pod_specs(node: Any) -> Iterator[dict[str, Any]]:
    """Every pod spec inside `node`: any mapping with `containers` (Deployment, StatefulSet, Job, Pod...)."""
    if isinstance(node, dict):
        if isinstance(node.get("containers"), list):
            yield node
        for value in node.values():
            yield from pod_specs(value)
    elif isinstance(node, list):
        for item in node:
            yield from pod_specs(item)


def rendered_pods() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for shape, overrides in SHAPES.items():
        for child in children(REF, parse_spec({**BASE_SPEC, **overrides}), CONFIG):
            found += [
                (f"{shape}: {child['kind']} {child['metadata']['name']}", pod) for pod in pod_specs(child)
            ]
    return found


def installed_pods() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            found += [(f"{path.name}: {doc['kind']}", pod) for pod in pod_specs(doc or {})]
    return found


ALL_PODS = rendered_pods() + installed_pods()


def test_the_walk_finds_every_workload() -> None:
    names = {name.split(": ", 1)[1] for name, _ in ALL_PODS}
    assert names == {
        "Deployment kettle-gateway",
        "Deployment kettle-consumer",
        "StatefulSet kettle-kafka",
        "Deployment",  # manifests/operator.yaml: the operator
    }


@pytest.mark.parametrize(("where", "pod"), ALL_PODS, ids=[name for name, _ in ALL_PODS])
def test_every_pod_runs_as_a_numeric_non_root_user_under_runtime_default_seccomp(
    where: str, pod: dict[str, Any]
) -> None:
    assert pod["securityContext"] == pod_security_context()
    assert isinstance(pod["securityContext"]["runAsUser"], int)
    assert pod["securityContext"]["runAsUser"] != 0


@pytest.mark.parametrize(("where", "pod"), ALL_PODS, ids=[name for name, _ in ALL_PODS])
def test_every_container_has_a_read_only_root_no_capability_and_no_escalation(
    where: str, pod: dict[str, Any]
) -> None:
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        assert container["securityContext"] == container_security_context(), container["name"]


@pytest.mark.parametrize(("where", "pod"), ALL_PODS, ids=[name for name, _ in ALL_PODS])
def test_every_container_writes_only_to_volumes_and_tmp_is_an_empty_dir(
    where: str, pod: dict[str, Any]
) -> None:
    volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts[TMP_PATH]["name"]], container["name"]
        # The Secrets are mounted read-only; only emptyDirs and claims take writes.
        for mount in mounts.values():
            volume = volumes.get(mount["name"], {})
            assert mount.get("readOnly") or "emptyDir" in volume or "secret" not in volume


def test_hardening_keeps_what_the_pod_had_and_changes_no_caller_object() -> None:
    original = {"containers": [{"name": "a", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
                "volumes": [{"name": "v", "emptyDir": {}}]}  # fmt: skip
    hardened = harden_pod(original)
    assert original == {"containers": [{"name": "a", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
                        "volumes": [{"name": "v", "emptyDir": {}}]}  # fmt: skip
    assert hardened["containers"][0]["volumeMounts"][0] == {"name": "v", "mountPath": "/v"}
    assert [v["name"] for v in hardened["volumes"]] == ["v", "tmp"]


def test_the_images_run_as_the_user_the_pods_ask_for() -> None:
    """The USER of each image a pod runs (manifests/images/*/Containerfile; the pause image is the
    node's, not a pod's) is the pods' runAsUser, so the image's files are theirs to read."""
    users = {
        path.parent.name: line.split()[1].split(":")[0]
        for path in sorted((MANIFESTS / "images").glob("*/Containerfile"))
        if path.parent.name != "pause"
        for line in path.read_text().splitlines()
        if line.startswith("USER ")
    }
    if not users:
        pytest.skip("no image Containerfile in manifests/images yet")
    assert set(users.values()) == {str(RUN_AS_USER)}, users


def test_every_image_the_platform_runs_is_tagged_with_the_project_version() -> None:
    images = [
        container["image"]
        for _, pod in ALL_PODS
        for container in [*pod.get("initContainers", []), *pod["containers"]]
    ]
    assert images
    assert {image.rpartition(":")[2] for image in images} == {__version__}


def test_the_operators_namespace_admits_only_pods_meeting_the_restricted_standard() -> None:
    (namespace,) = [doc for doc in yaml.safe_load_all((MANIFESTS / "namespace.yaml").read_text()) if doc]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
