"""The real API server accepts every rendered child and every install manifest (server-side dry run).

Dry run: admission and validation run in full, nothing is stored, so the FlashSale CRD need not
exist (owner references are not checked against their owner) and the shared cluster is untouched.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from flashsale_operator.config import OperatorConfig
from flashsale_operator.render import SaleRef, children, sale_secret
from flashsale_operator.spec import parse_spec

pytestmark = pytest.mark.cluster

MANIFESTS = Path(__file__).parents[2] / "manifests"
SPEC = {
    "product": {"sku": "KETTLE-1", "name": "Copper kettle", "price": "49.00", "currency": "EUR"},
    "stock": 100,
    "perUserLimit": 1,
    "schedule": {"startsAt": "2030-11-11T11:11:00Z", "endsAt": "2030-11-11T12:11:00Z"},
    "paymentTimeoutSeconds": 900,
    "isolation": {"tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]},
}
# The local platform's shape: loopback addresses and a DNS name.
CONFIG = OperatorConfig(
    redis_url="redis://127.0.0.1:6379/0",
    kafka_bootstrap_servers="127.0.0.1:9092,kafka.middleware.svc:9093",
    database_url="postgresql://flashsale:pw@127.0.0.1:5432/flashsale",  # type: ignore[arg-type]
    user_token_key="platform-user-token-key-0123456789",  # type: ignore[arg-type]
    payment_key="platform-payment-key-0123456789",  # type: ignore[arg-type]
    gateway_database_url="postgresql://sale_gateway:gw@127.0.0.1:5432/flashsale",  # type: ignore[arg-type]
    consumer_database_url="postgresql://sale_consumer:co@127.0.0.1:5432/flashsale",  # type: ignore[arg-type]
)


def apply_dry_run(api: kubernetes.client.ApiClient, manifest: dict[str, Any]) -> dict[str, Any]:
    """Server-side apply, as the operator does it, without storing anything; returns what would be."""
    dynamic = kubernetes.dynamic.DynamicClient(api)
    resource = dynamic.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
    applied = dynamic.server_side_apply(
        resource,
        body=manifest,
        namespace=manifest["metadata"].get("namespace"),
        field_manager="flashsale-operator",
        force_conflicts=True,
        dry_run="All",
    )
    return dict(applied.to_dict())


def test_the_api_server_accepts_every_child_of_a_sale(
    kube_api: kubernetes.client.ApiClient, namespace: str
) -> None:
    ref = SaleRef(name="kettle", namespace=namespace, uid=str(uuid.uuid4()))
    secret = sale_secret(ref, CONFIG, order_path_key="kettle-order-path-key-0123456789")
    core = kubernetes.client.CoreV1Api(kube_api)
    core.create_namespaced_secret(namespace, secret, dry_run="All")  # the operator creates it once
    for child in children(ref, parse_spec(SPEC), CONFIG):
        stored = apply_dry_run(kube_api, child)
        meta = stored["metadata"]
        assert (meta["name"], meta["namespace"]) == (child["metadata"]["name"], namespace)
        assert meta["ownerReferences"][0]["uid"] == ref.uid
        if child["kind"] == "Deployment":
            pod = stored["spec"]["template"]["spec"]
            assert pod["volumes"][0]["secret"]["defaultMode"] == 0o400
            assert pod["tolerations"] == SPEC["isolation"]["tolerations"]  # type: ignore[index]
    assert not core.list_namespaced_secret(namespace, label_selector="flashsale.dev/sale=kettle").items


def test_the_api_server_accepts_every_install_manifest(
    kube_api: kubernetes.client.ApiClient, namespace: str
) -> None:
    """Namespaced objects go to the test's namespace: flashsale-system need not exist for a dry run."""
    for name in ("namespace.yaml", "rbac.yaml", "operator.yaml"):
        for manifest in yaml.safe_load_all((MANIFESTS / name).read_text()):
            if "namespace" in manifest["metadata"]:
                manifest["metadata"]["namespace"] = namespace
            for subject in manifest.get("subjects", []):
                subject["namespace"] = namespace
            stored = apply_dry_run(kube_api, manifest)
            assert stored["metadata"]["name"] == manifest["metadata"]["name"]
