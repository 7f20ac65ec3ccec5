"""What the platform team controls on a running sale, and what the operator refuses - every answer
readable in the FlashSale's status, its Events and `kubectl get fsale`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import kubernetes
import pytest

from flashsale_dev.cluster import LocalCluster
from flashsale_dev.flashsales import FlashSales, rfc3339, sale_spec
from flashsale_dev.operator_install import NAMESPACE, InstalledOperator
from flashsale_dev.platform import LocalPlatform
from flashsale_dev.shoppers import buy
from flashsale_dev.waiting import wait_for
from flashsale_sale import gate
from flashsale_sale.contract import SaleKeys

OPERATOR_ACCOUNT = f"system:serviceaccount:{NAMESPACE}:flashsale-operator"


def gateway_states(core: Any, namespace: str, sale: str) -> set[str]:
    """What every gateway replica says of the sale, asked directly (not through the Service)."""
    pods = core.list_namespaced_pod(
        namespace, label_selector=f"app.kubernetes.io/instance={sale},app.kubernetes.io/component=gateway"
    ).items
    return {httpx.get(f"http://{p.status.pod_ip}:8080/api/status", timeout=10).json()["state"] for p in pods}


def test_pausing_closes_every_gateway_replica_at_once_and_unpausing_reopens_them_until_the_end(
    flashsale_operator: InstalledOperator,
    kube_api: kubernetes.client.ApiClient,
    namespace: str,
    platform: LocalPlatform,
) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    sales = FlashSales(kube_api, namespace)
    uid = sales.create("pausable", sale_spec(stock=5, starts_in=6, lasts=45, prewarm_seconds=2))["metadata"][
        "uid"
    ]
    sales.wait_status(
        "pausable",
        lambda s: s.get("phase") == "Live" and (s.get("gateway") or {}).get("readyReplicas") == 2,
        what="Live with both replicas Ready",
    )
    wait_for(lambda: gateway_states(core, namespace, "pausable") == {"live"}, timeout=60, what="both live")

    sales.patch_spec("pausable", {"paused": True})
    sales.wait_phase("pausable", "Paused", timeout=60)
    wait_for(
        lambda: gateway_states(core, namespace, "pausable") == {"paused"}, timeout=60, what="both paused"
    )

    sales.patch_spec("pausable", {"paused": False})
    sales.wait_phase("pausable", "Live", timeout=60)
    wait_for(
        lambda: gateway_states(core, namespace, "pausable") == {"live"}, timeout=60, what="both reopened"
    )

    ended = sales.wait_phase("pausable", "Ended", timeout=180)
    assert ended["endedAt"] >= ended["startedAt"]
    assert not gate.is_open(platform.redis.client(), SaleKeys(uid))
    opened = [is_open for is_open, _ in gate.flips(platform.redis.client(), SaleKeys(uid))]
    assert opened == [True, False, True, False]  # start, pause, unpause, end: each flip exactly once
    sales.wait_event_reasons("pausable", ("Live", "Paused", "Ended"), ["Live", "Paused", "Live", "Ended"])
    sales.delete("pausable")
    wait_for(lambda: not sales.exists("pausable"), timeout=180, what="deleted")


def test_a_sold_out_sale_reopens_when_unpaid_stock_comes_back_before_its_end(
    flashsale_operator: InstalledOperator, kube_api: kubernetes.client.ApiClient, namespace: str
) -> None:
    sales = FlashSales(kube_api, namespace)
    spec = sale_spec(
        stock=3, starts_in=6, prewarm_seconds=3, payment_timeout_seconds=4, gateway={"replicas": 1}
    )
    sales.create("resale", spec)
    live = sales.wait_status("resale", lambda s: s.get("phase") == "Live" and bool(s["gateway"].get("url")),
                             what="Live and reachable")  # fmt: skip
    url = live["gateway"]["url"]
    users = ["first-0", "first-1", "first-2"]
    assert buy(url, flashsale_operator.sale_key(namespace, "resale"), users) == [202, 202, 202]
    sales.wait_phase("resale", "SoldOut", timeout=60)
    # Nobody paid: after the payment timeout the units come back, and the same sale sells them again.
    back = sales.wait_status("resale", lambda s: s.get("phase") == "Live" and s["stock"]["remaining"] >= 2,
                             what="Live again with the returned units", timeout=120)  # fmt: skip
    assert back["stock"]["expired"] >= 2
    assert buy(url, flashsale_operator.sale_key(namespace, "resale"), ["second-0", "second-1"]) == [202, 202]
    sales.wait_event_reasons("resale", ("Live", "SoldOut"), ["Live", "SoldOut", "Live"], prefix=True)
    sales.delete("resale")
    wait_for(lambda: not sales.exists("resale"), timeout=180, what="deleted")


def test_a_sale_starting_in_the_past_fails_with_a_reason_naming_the_field_and_others_still_run(
    flashsale_operator: InstalledOperator,
    kube_api: kubernetes.client.ApiClient,
    namespace: str,
    cluster: LocalCluster,
) -> None:
    sales = FlashSales(kube_api, namespace)
    past = datetime.now(UTC) - timedelta(hours=1)
    late = sale_spec()
    late["schedule"] = {"startsAt": rfc3339(past), "endsAt": rfc3339(past + timedelta(hours=3))}
    sales.create("late", late)
    sales.create("fine", sale_spec(starts_in=3600, prewarm_seconds=0))

    failed = sales.wait_phase("late", "Failed", timeout=120)
    valid = next(c for c in failed["conditions"] if c["type"] == "SpecValid")
    assert (valid["status"], valid["reason"]) == ("False", "StartsInThePast")
    assert "spec.schedule.startsAt" in valid["message"]
    assert "StartsInThePast" in sales.event_reasons("late")
    assert sales.wait_phase("fine", "Scheduled")["phase"] == "Scheduled"

    # Fixing the field brings the failed sale back.
    soon = datetime.now(UTC) + timedelta(hours=1)
    sales.patch_spec(
        "late", {"schedule": {"startsAt": rfc3339(soon), "endsAt": rfc3339(soon + timedelta(hours=1))}}
    )
    sales.wait_phase("late", "Scheduled", timeout=120)
    table = cluster.kubectl("get", "fsale", "-n", namespace)
    assert table.split("\n")[0].split() == ["NAME", "PHASE", "STOCK", "REMAINING", "STARTS", "AGE"]
    for name in ("late", "fine"):
        sales.delete(name)
    wait_for(lambda: not sales.exists("late") and not sales.exists("fine"), timeout=180, what="deleted")


@pytest.mark.parametrize(
    ("verb", "resource", "allowed"),
    [
        ("create", "secrets", True),
        ("patch", "secrets", True),
        ("get", "secrets", False),
        ("list", "secrets", False),
        ("watch", "secrets", False),
        ("patch", "flashsales.flashsale.dev/status", True),
        ("patch", "deployments.apps/scale", True),
        ("delete", "flashsales.flashsale.dev", False),
        ("create", "pods", False),
        ("delete", "nodes", False),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io", False),
    ],
)
def test_the_operator_account_has_exactly_the_rights_it_needs(
    flashsale_operator: InstalledOperator, cluster: LocalCluster, verb: str, resource: str, allowed: bool
) -> None:
    answer = cluster.kubectl("auth", "can-i", verb, resource, "--all-namespaces", f"--as={OPERATOR_ACCOUNT}",
                             check=False).strip()  # fmt: skip
    assert answer == ("yes" if allowed else "no")
