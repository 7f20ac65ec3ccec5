"""The operator SIGKILLed at the worst moments of a sale - right after it built the gate, in the
second before the start, right after the flip, right after recording Live, right after scaling -
resumes from what Redis and the status hold: every phase announced once and in order, the flag
flipped once, the stock never reset, nothing oversold.

The kills are deterministic: the session's operator is the test build, which carries test-only kill
points (flashsale_dev/operator_kill_points.py), and each sale names in an annotation the step after
which the operator must die (once).
"""

from __future__ import annotations

from typing import Any

import kubernetes
import pytest

from flashsale_dev import faults
from flashsale_dev.flashsales import FlashSales, sale_spec
from flashsale_dev.operator_install import InstalledOperator, operator_pods
from flashsale_dev.operator_kill_points import ANNOTATION
from flashsale_dev.platform import LocalPlatform
from flashsale_dev.shoppers import buy, buy_one_at_a_time
from flashsale_dev.waiting import wait_for
from flashsale_sale import gate
from flashsale_sale.contract import SaleKeys

STOCK = 20
PHASES = ("Scheduled", "Prewarming", "Ready", "Live", "Paused", "SoldOut", "Ended")


@pytest.fixture(scope="module")
def kill_points(flashsale_operator: InstalledOperator) -> InstalledOperator:
    """The session's operator: the test build, whose kill points a sale arms with its annotation."""
    return flashsale_operator


def operator_restarts(core: Any) -> int:
    (pod,) = operator_pods(core)
    return sum(c.restart_count for c in pod.status.container_statuses or [])


def create_armed(sales: FlashSales, name: str, step: str, **spec: Any) -> str:
    body = sale_spec(stock=STOCK, starts_in=25, prewarm_seconds=18, gateway={"replicas": 1}, **spec)
    created = sales.custom.create_namespaced_custom_object(
        "flashsale.dev", "v1alpha1", sales.namespace, "flashsales",
        {"apiVersion": "flashsale.dev/v1alpha1", "kind": "FlashSale",
         "metadata": {"name": name, "annotations": {ANNOTATION: step}}, "spec": body},
    )  # fmt: skip
    return str(created["metadata"]["uid"])


def wait_live(sales: FlashSales, name: str) -> dict[str, Any]:
    return sales.wait_status(
        name,
        lambda s: s.get("phase") == "Live" and bool((s.get("gateway") or {}).get("readyReplicas")),
        what="Live and reachable",
        timeout=240,
    )


def sell_out_and_check(
    sales: FlashSales, name: str, uid: str, user_key: str, platform: LocalPlatform
) -> None:
    live = wait_live(sales, name)
    answers = buy(live["gateway"]["url"], user_key, [f"k{i}" for i in range(STOCK + 10)])
    assert answers.count(202) == STOCK  # never oversold, whatever the operator went through
    sales.wait_status(name, lambda s: s.get("phase") == "SoldOut" and s["stock"]["ordered"] == STOCK,
                      what="SoldOut, every unit an order", timeout=180)  # fmt: skip
    redis = platform.redis.client()
    keys = SaleKeys(uid)
    assert [opened for opened, _ in gate.flips(redis, keys)] == [True]  # the flag flipped once
    assert int(redis.get(keys.initial) or 0) == STOCK  # built once, never reset
    sales.wait_event_reasons(name, PHASES, ["Scheduled", "Prewarming", "Ready", "Live", "SoldOut"])


@pytest.mark.parametrize("step", ["prewarmed", "before-start", "flipped", "live"])
def test_a_kill_at_each_step_of_the_schedule_neither_repeats_nor_skips_it(
    kill_points: InstalledOperator,
    kube_api: kubernetes.client.ApiClient,
    namespace: str,
    platform: LocalPlatform,
    step: str,
) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    sales = FlashSales(kube_api, namespace)
    restarts = operator_restarts(core)
    uid = create_armed(sales, "armed", step)
    wait_for(
        lambda: operator_restarts(core) > restarts, timeout=180, what=f"the operator killed after {step}"
    )
    sell_out_and_check(sales, "armed", uid, kill_points.sale_key(namespace, "armed"), platform)
    sales.delete("armed")
    wait_for(lambda: not sales.exists("armed"), timeout=240, what="deleted")


def test_a_kill_right_after_scaling_resumes_the_loop_from_the_observed_replicas(
    kill_points: InstalledOperator,
    kube_api: kubernetes.client.ApiClient,
    namespace: str,
    platform: LocalPlatform,
) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    apps = kubernetes.client.AppsV1Api(kube_api)
    sales = FlashSales(kube_api, namespace)
    scaling = {"minReplicas": 1, "maxReplicas": 2, "lagThreshold": 5, "scaleDownStabilizationSeconds": 600}
    uid = create_armed(sales, "scaled", "scaled", queue={"partitions": 2}, consumers=scaling)
    live = wait_live(sales, "scaled")
    restarts = operator_restarts(core)
    with faults.ledger_locked(platform.postgres.url(), uid):  # consumers held back: a backlog builds
        # One at a time: a Kafka message each, so the lag is 15 (a gateway publishes one per tick).
        users = [f"s{i}" for i in range(15)]
        answers = buy_one_at_a_time(live["gateway"]["url"], kill_points.sale_key(namespace, "scaled"), users)
        assert answers.count(202) == 15
        wait_for(
            lambda: operator_restarts(core) > restarts, timeout=180, what="the operator killed after scaling"
        )
        # The new operator sees 2 replicas, needs 2, and keeps them (its window starts over).
        sales.wait_status("scaled", lambda s: (s.get("consumers") or {}).get("replicas") == 2,
                          what="the scaling loop resumed at 2 replicas", timeout=180)  # fmt: skip
    assert apps.read_namespaced_deployment_scale("scaled-consumer", namespace).spec.replicas == 2
    sales.wait_status(
        "scaled", lambda s: s["stock"]["ordered"] == 15, what="every order written", timeout=180
    )
    ups = [e for e in sales.events("scaled") if e.reason == "ScaledUp"]
    assert len(ups) <= 1  # the scale-up happened once (its Event may have died with the operator)
    sales.delete("scaled")
    wait_for(lambda: not sales.exists("scaled"), timeout=240, what="deleted")
