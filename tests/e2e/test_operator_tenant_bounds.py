"""The operator takes over nothing it did not create, and places a tenant's sale only where the
platform allows.

- A Secret and a Service already named like a sale's children (the shop's own, say) are left exactly
  as they are: the sale says which objects hold its names (`ChildrenReady=False`, reason `Conflict`,
  a Warning Event), writes no child at all, and goes on to Ready once they are gone.
- A sale asking for the shop's nodes or a priority that preempts the shop is refused: Failed, with
  the field and the value named, and nothing created.
"""

from __future__ import annotations

from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from flashsale_dev.flashsales import FlashSales, sale_spec
from flashsale_dev.operator_install import InstalledOperator
from flashsale_dev.waiting import wait_for


def exists(read: Any, name: str, namespace: str) -> bool:
    try:
        read(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def as_seen(obj: Any) -> tuple[Any, ...]:
    """What must not change on a foreign object: its version, owners, labels and content."""
    meta = obj.metadata
    content = obj.data if isinstance(obj, kubernetes.client.V1Secret) else obj.spec.to_dict()
    return meta.resource_version, meta.owner_references, meta.labels, content


def test_objects_holding_a_sales_names_are_left_alone_until_they_are_gone_then_the_sale_runs(
    flashsale_operator: InstalledOperator, kube_api: kubernetes.client.ApiClient, namespace: str
) -> None:
    core, apps = kubernetes.client.CoreV1Api(kube_api), kubernetes.client.AppsV1Api(kube_api)
    sales = FlashSales(kube_api, namespace)
    # The shop's own objects, created before the sale, under the names the sale's children would take.
    core.create_namespaced_secret(namespace, {"metadata": {"name": "taken-secrets"},
                                              "stringData": {"SHOP_API_KEY": "the shop's own"}})  # fmt: skip
    core.create_namespaced_service(namespace, {
        "metadata": {"name": "taken-gateway", "labels": {"app": "shop"}},
        "spec": {"selector": {"app": "shop"}, "ports": [{"port": 80, "targetPort": 8080}]},
    })  # fmt: skip
    before = {
        "secret": as_seen(core.read_namespaced_secret("taken-secrets", namespace)),
        "service": as_seen(core.read_namespaced_service("taken-gateway", namespace)),
    }

    sales.create("taken", sale_spec(stock=5, starts_in=90, prewarm_seconds=85, gateway={"replicas": 1}))
    refused = sales.wait_condition("taken", "ChildrenReady", "False", "Conflict", timeout=120)
    assert "Secret taken-secrets already exists and is not this sale's" in refused["message"]
    assert "Service taken-gateway already exists and is not this sale's (no owner)" in refused["message"]
    warning = wait_for(
        lambda: next((e for e in sales.events("taken") if e.reason == "Conflict"), None),
        timeout=60, what="a Conflict Event",
    )  # fmt: skip
    assert warning.type == "Warning"
    assert "taken-gateway" in warning.message
    assert sales.status("taken")["phase"] in ("Scheduled", "Prewarming")  # no gate without its children
    # Nothing written: the foreign objects as they were, and not one child of the sale.
    assert as_seen(core.read_namespaced_secret("taken-secrets", namespace)) == before["secret"]
    assert as_seen(core.read_namespaced_service("taken-gateway", namespace)) == before["service"]
    assert not exists(apps.read_namespaced_deployment, "taken-gateway", namespace)
    assert not exists(apps.read_namespaced_deployment, "taken-consumer", namespace)

    core.delete_namespaced_secret("taken-secrets", namespace)
    core.delete_namespaced_service("taken-gateway", namespace)
    sales.wait_phase("taken", "Ready", timeout=180)
    assert sales.condition("taken", "ChildrenReady")["reason"] == "Applied"  # type: ignore[index]
    uid = sales.get("taken")["metadata"]["uid"]
    for child in (core.read_namespaced_service("taken-gateway", namespace),
                  apps.read_namespaced_deployment("taken-gateway", namespace)):  # fmt: skip
        (owner,) = child.metadata.owner_references
        assert (owner.kind, owner.uid, owner.controller) == ("FlashSale", uid, True)
    sales.delete("taken")
    wait_for(lambda: not sales.exists("taken"), timeout=180, what="deleted")


REFUSED = {  # sale -> (spec.isolation, the field, the reason, the value named)
    "shop-pool": ({"nodeSelector": {"pool": "shop"}}, "spec.isolation.nodeSelector", "NodeSelectorNotAllowed",
                  "pool=shop"),
    "vip": ({"priorityClassName": "system-cluster-critical"}, "spec.isolation.priorityClassName",
            "PriorityClassNotAllowed", "system-cluster-critical"),
}  # fmt: skip


def test_a_sale_asking_for_the_shops_nodes_or_priority_is_refused_naming_field_and_value(
    flashsale_operator: InstalledOperator, kube_api: kubernetes.client.ApiClient, namespace: str
) -> None:
    apps = kubernetes.client.AppsV1Api(kube_api)
    sales = FlashSales(kube_api, namespace)
    for name, (isolation, *_) in REFUSED.items():
        sales.create(name, sale_spec(starts_in=60, isolation=isolation))
    for name, (_, field, reason, value) in REFUSED.items():
        failed = sales.wait_phase(name, "Failed", timeout=120)
        valid = next(c for c in failed["conditions"] if c["type"] == "SpecValid")
        assert (valid["status"], valid["reason"]) == ("False", reason)
        assert field in valid["message"]
        assert value in valid["message"]
        refusal = next(e for e in sales.events(name) if e.reason == reason)
        assert refusal.type == "Warning"
        assert value in refusal.message
        assert not exists(apps.read_namespaced_deployment, f"{name}-gateway", namespace)
    for name in REFUSED:
        sales.delete(name)
    wait_for(lambda: not any(sales.exists(n) for n in REFUSED), timeout=180, what="deleted")
