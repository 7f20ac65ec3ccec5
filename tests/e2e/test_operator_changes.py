"""Changing a sale while it sells, and losing its gate: the FlashSale keeps every order it accepted.

- What a platform team may change on a live sale (gateway replicas, the per-user rate, the per-user
  limit, the end) rolls out to new pods while a crowd keeps buying: every reservation a buyer was
  given (202) becomes exactly one order in PostgreSQL, and nothing is oversold.
- What it may not change (the SKU; the stock once the gate holds it) is refused by the API server
  with the reason, and the sale goes on as it was.
- When Redis loses the sale's gate while it is live, the operator says so (GateLost), waits for the
  topic to drain, rebuilds the gate from the record, reopens the sale, and it sells exactly the rest.

The crowd is real: distinct shoppers arriving at a steady pace, each buying once through
`status.gateway.url` as the sale page does, concurrently with the changes.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import kubernetes
import psycopg
import pytest
from kubernetes.client.exceptions import ApiException

from flashsale_dev.flashsales import FlashSales, rfc3339, sale_spec
from flashsale_dev.operator_install import InstalledOperator
from flashsale_dev.platform import LocalPlatform
from flashsale_dev.shop_crowd import Crowd
from flashsale_dev.waiting import wait_for
from flashsale_sale import gate
from flashsale_sale.contract import SaleKeys
from flashsale_sale.prewarm import SETTLE_SECONDS
from flashsale_sale.reconcile import Verdict
from flashsale_sale.reconcile_read import reconcile

Orders = dict[str, tuple[str, int]]  # reservation id -> (user, quantity)


def orders_of(platform: LocalPlatform, sale_id: str) -> Orders:
    """The sale's orders in PostgreSQL."""
    with psycopg.connect(platform.postgres.url()) as conn:
        rows = conn.execute(
            "SELECT reservation_id, user_id, quantity FROM orders WHERE sale_id = %s", (sale_id,)
        ).fetchall()
    return {str(r): (str(u), int(q)) for r, u, q in rows}


def every_reservation_an_order(platform: LocalPlatform, sale_id: str, crowd: Crowd) -> Orders:
    """The sale's orders, once every 202 the crowd was given is one (the consumers write them in seconds)."""
    given = {str(o.reservation_id): o for o in crowd.reservations()}

    def all_there() -> Orders | None:
        orders = orders_of(platform, sale_id)
        return orders if given.keys() <= orders.keys() else None

    def missing() -> str:
        orders = orders_of(platform, sale_id)
        lost = [f"{rid} ({o.user}, {o.quantity} units)" for rid, o in given.items() if rid not in orders]
        return f"{len(lost)} reservations given but not orders: {lost}"

    return wait_for(all_there, timeout=180, what="every accepted reservation an order", describe=missing)


def counted_once(platform: LocalPlatform, sale_id: str) -> Verdict:
    """`flashsale reconcile`'s verdict: every unit of the sale counted exactly once (Redis and record)."""
    with psycopg.connect(platform.postgres.url()) as conn:
        verdict = reconcile(platform.redis.client(), conn, sale_id)
    assert verdict is not None, "the sale never stood still long enough to be reconciled"
    assert verdict.ok, verdict.report()
    return verdict


def pods_of(core: Any, namespace: str, sale: str, component: str) -> list[Any]:
    selector = f"app.kubernetes.io/instance={sale},app.kubernetes.io/component={component}"
    return list(core.list_namespaced_pod(namespace, label_selector=selector).items)


def env_of(pod_or_template: Any) -> dict[str, str]:
    return {e.name: e.value for e in pod_or_template.spec.containers[0].env if e.value is not None}


def is_ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def rolled_out(apps: Any, namespace: str, deployment: str, replicas: int, env: dict[str, str]) -> bool:
    """The Deployment has the new pod template, and exactly `replicas` pods of it, all Ready."""
    found = apps.read_namespaced_deployment(deployment, namespace)
    status = found.status
    return (
        found.spec.replicas == replicas
        and env.items() <= env_of(found.spec.template).items()
        and status.observed_generation == found.metadata.generation
        and status.replicas == status.updated_replicas == status.ready_replicas == replicas
    )


def owning_replica_sets(pods: list[Any]) -> set[str]:
    return {o.name for p in pods for o in p.metadata.owner_references or [] if o.kind == "ReplicaSet"}


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- the tests --------------------------------------------------------------------------------------

# At 5 shoppers a second, of 1 or 2 units each, the sale sells for minutes: all through the rollout.
ROLLOUT_STOCK = 1500


def test_changing_replicas_limits_and_the_end_of_a_live_sale_rolls_out_without_losing_an_order(
    flashsale_operator: InstalledOperator,
    kube_api: kubernetes.client.ApiClient,
    namespace: str,
    platform: LocalPlatform,
) -> None:
    core, apps = kubernetes.client.CoreV1Api(kube_api), kubernetes.client.AppsV1Api(kube_api)
    sales = FlashSales(kube_api, namespace)
    rate = {"requests": 5, "perSeconds": 1.0}
    spec = sale_spec(stock=ROLLOUT_STOCK, starts_in=10, prewarm_seconds=3, lasts=900,
                     gateway={"replicas": 2, "userRateLimit": rate})  # fmt: skip
    uid = sales.create("rolling", spec)["metadata"]["uid"]
    live = sales.wait_status(
        "rolling",
        lambda s: s.get("phase") == "Live" and (s.get("gateway") or {}).get("readyReplicas") == 2,
        what="Live with both gateway replicas Ready",
    )
    first_replica_sets = owning_replica_sets(pods_of(core, namespace, "rolling", "gateway"))
    later = at(spec["schedule"]["endsAt"]) + timedelta(minutes=30)
    new_env = {
        "FLASHSALE_PER_USER_LIMIT": "2",
        "FLASHSALE_USER_RATE_REQUESTS": "3",
        "FLASHSALE_USER_RATE_SECONDS": "2.5",
    }

    key = flashsale_operator.sale_key(namespace, "rolling").encode()
    with Crowd(live["gateway"]["url"], key, name="rolling",
               per_second=5, most=ROLLOUT_STOCK) as crowd:  # fmt: skip
        wait_for(lambda: len(crowd.reservations()) >= 10, timeout=120, what="the crowd buying")

        # The platform team edits the live sale: one more replica, another per-user rate, two units
        # per buyer, a later end.
        changed_at = time.monotonic()
        changed = sales.patch_spec(
            "rolling",
            {
                "gateway": {"replicas": 3, "userRateLimit": {"requests": 3, "perSeconds": 2.5}},
                "perUserLimit": 2,
                "schedule": {"endsAt": rfc3339(later)},
            },
        )
        generation = changed["metadata"]["generation"]
        crowd.app_limit = 2  # the shop's app announces it at once; the page follows when it is fetched anew

        # New pods replace the old ones, one at a time, each Ready before an old one goes.
        wait_for(
            lambda: (
                rolled_out(apps, namespace, "rolling-gateway", 3, new_env)
                and rolled_out(apps, namespace, "rolling-consumer", 1, {"FLASHSALE_PER_USER_LIMIT": "2"})
                and len(pods := pods_of(core, namespace, "rolling", "gateway")) == 3
                and all(is_ready(p) and new_env.items() <= env_of(p).items() for p in pods)
                and len(pods_of(core, namespace, "rolling", "consumer")) == 1
            ),
            timeout=300,
            what="the gateway (3 replicas) and the consumer rolled out with the new settings",
        )
        rolled_at = time.monotonic()
        gateways = pods_of(core, namespace, "rolling", "gateway")
        new_replica_sets = owning_replica_sets(gateways)
        assert len(new_replica_sets) == 1
        assert not new_replica_sets & first_replica_sets
        for pod in gateways:  # every replica ends the sale at the new time
            told = httpx.get(f"http://{pod.status.pod_ip}:8080/api/status", timeout=10).json()
            assert (told["state"], at(told["endsAt"])) == ("live", later)
        sales.wait_status(
            "rolling",
            lambda s: (
                s.get("observedGeneration") == generation
                and s.get("phase") == "Live"
                and (s.get("gateway") or {}).get("readyReplicas") == 3
            ),
            what=f"generation {generation} observed, 3 replicas Ready",
        )
        # Buyers now take two units each, on every replica.
        wait_for(
            lambda: sum(o.quantity == 2 for o in crowd.reservations(after=rolled_at)) >= 10,
            timeout=120,
            what="reservations of two units after the rollout",
        )

    outcomes = crowd.outcomes
    assert not [o.user for o in outcomes if o.status == 0], "shoppers gave up"
    assert not crowd.sold_out.is_set(), "sold out before the rollout was over: raise ROLLOUT_STOCK"
    reserved = crowd.reservations()
    assert len({o.reservation_id for o in reserved}) == len(reserved)
    during = [o for o in reserved if changed_at <= o.at < rolled_at]
    assert [o for o in reserved if o.at < changed_at]
    assert during  # the sale sold while it rolled out
    print(
        f"\nrollout: {len(outcomes)} shoppers, {len(reserved)} reservations "
        f"({sum(o.quantity for o in reserved)} units), {len(during)} during the rollout "
        f"({sum(o.quantity == 2 for o in during)} of 2 units), rolled out in {rolled_at - changed_at:.1f} s; "
        f"retries {dict(crowd.retries)}"
    )

    # No accepted order is lost, none is made twice, none is made that nobody was told about.
    orders = every_reservation_an_order(platform, uid, crowd)
    assert orders == {o.reservation_id: (o.user, o.quantity) for o in reserved}
    units = sum(quantity for _, quantity in orders.values())
    assert units <= ROLLOUT_STOCK
    final = sales.wait_status(
        "rolling",
        lambda s: (s.get("stock") or {}).get("ordered") == units and s["stock"]["reserved"] == 0,
        what=f"{units} units ordered in the status",
    )
    assert final["stock"]["remaining"] == ROLLOUT_STOCK - units
    valid = next(c for c in final["conditions"] if c["type"] == "SpecValid")
    assert (valid["status"], valid["observedGeneration"]) == ("True", generation)
    counted_once(platform, uid)  # `flashsale reconcile`: every unit counted once
    sales.delete("rolling")
    wait_for(lambda: not sales.exists("rolling"), timeout=180, what="deleted")


def test_once_prewarmed_a_new_stock_or_any_new_sku_is_refused_by_the_api_server_with_the_reason(
    flashsale_operator: InstalledOperator,
    kube_api: kubernetes.client.ApiClient,
    namespace: str,
    platform: LocalPlatform,
) -> None:
    sales = FlashSales(kube_api, namespace)
    spec = sale_spec(stock=50, starts_in=600, prewarm_seconds=900)  # prewarmed at once, opens in 10 min
    uid = sales.create("fixed", spec)["metadata"]["uid"]
    ready = sales.wait_status(
        "fixed", lambda s: s.get("phase") == "Ready" and bool(s.get("prewarmedAt")), what="prewarmed"
    )
    generation = sales.get("fixed")["metadata"]["generation"]

    refusals: list[tuple[str, dict[str, Any], str]] = [
        ("spec.stock", {"stock": 100}, "spec.stock cannot change once the sale is prewarmed"),
        ("spec.product.sku", {"product": {"sku": "KETTLE-2"}}, "spec.product.sku is immutable"),
    ]
    for field, change, reason in refusals:
        with pytest.raises(ApiException) as refused:
            sales.patch_spec("fixed", change)
        assert refused.value.status == 422
        refusal = json.loads(refused.value.body)
        assert reason in refusal["message"]
        assert field in [c.get("field") for c in refusal["details"]["causes"]]

    # The sale never saw the refused changes: same generation, same spec, same gate, still valid.
    after = sales.get("fixed")
    assert after["metadata"]["generation"] == generation
    assert (after["spec"]["stock"], after["spec"]["product"]["sku"]) == (50, "KETTLE-1")
    assert after["status"]["phase"] == "Ready"
    assert after["status"]["prewarmedAt"] == ready["prewarmedAt"]
    assert sales.condition("fixed", "SpecValid")["status"] == "True"  # type: ignore[index]
    assert gate.remaining(platform.redis.client(), SaleKeys(uid)) == 50
    sales.delete("fixed")
    wait_for(lambda: not sales.exists("fixed"), timeout=180, what="deleted")


def test_until_the_prewarm_the_stock_may_change_and_the_gate_is_built_with_the_new_stock(
    flashsale_operator: InstalledOperator,
    kube_api: kubernetes.client.ApiClient,
    namespace: str,
    platform: LocalPlatform,
) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    sales = FlashSales(kube_api, namespace)
    uid = sales.create("resized", sale_spec(stock=50, starts_in=3600, prewarm_seconds=60))["metadata"]["uid"]
    sales.wait_phase("resized", "Scheduled")
    wait_for(  # the sale's pods run long before its start: a platform team edits a sale that runs
        lambda: [p for p in pods_of(core, namespace, "resized", "consumer") if is_ready(p)],
        timeout=180,
        what="the sale's consumer Ready",
    )

    sales.patch_spec("resized", {"stock": 80})
    sales.wait_status("resized", lambda s: (s.get("stock") or {}).get("total") == 80, what="stock 80")

    # Moving the start near enough prewarms at once: the gate and the record hold the new stock.
    soon = datetime.now(UTC) + timedelta(minutes=10)
    later = soon + timedelta(hours=1)
    sales.patch_spec(
        "resized", {"schedule": {"startsAt": rfc3339(soon), "endsAt": rfc3339(later), "prewarmSeconds": 900}}
    )
    ready = sales.wait_status(
        "resized", lambda s: s.get("phase") == "Ready" and bool(s.get("prewarmedAt")), what="prewarmed"
    )
    assert ready["stock"]["total"] == 80
    assert ready["stock"]["remaining"] == 80, "the gate was built with another stock than the spec's"
    verdict = counted_once(platform, uid)
    assert verdict.numbers.initial == 80
    sales.delete("resized")
    wait_for(lambda: not sales.exists("resized"), timeout=180, what="deleted")


REBUILD_STOCK = 60


def test_a_gate_lost_while_live_is_rebuilt_from_the_record_and_the_sale_sells_exactly_the_rest(
    flashsale_operator: InstalledOperator,
    kube_api: kubernetes.client.ApiClient,
    namespace: str,
    platform: LocalPlatform,
) -> None:
    sales = FlashSales(kube_api, namespace)
    created = sales.create("regate", sale_spec(stock=REBUILD_STOCK, starts_in=10, prewarm_seconds=3))
    uid = created["metadata"]["uid"]
    live = sales.wait_status(
        "regate",
        lambda s: s.get("phase") == "Live" and (s.get("gateway") or {}).get("readyReplicas") == 2,
        what="Live with both gateway replicas Ready",
    )
    redis = platform.redis.client()
    keys = SaleKeys(uid)

    key = flashsale_operator.sale_key(namespace, "regate").encode()
    with Crowd(live["gateway"]["url"], key, name="regate",
               per_second=3, most=4 * REBUILD_STOCK) as crowd:  # fmt: skip
        wait_for(lambda: len(crowd.reservations()) >= 20, timeout=120, what="the crowd buying")

        # Redis restarts without persistence: the sale's gate and flag are gone, at once.
        redis.delete(keys.stock, keys.initial, keys.buyers, keys.pending, keys.settled, keys.open)
        lost_at = time.monotonic()
        lost = sales.wait_condition("regate", "GateReady", "False", "GateLost", timeout=60)
        assert sales.status("regate")["phase"] == "Live"  # the recorded phase stays while it is rebuilt
        wait_for(lambda: "GateLost" in sales.event_reasons("regate"), timeout=60, what="a GateLost Event")

        # It waits for everything accepted before the loss to be an order, then rebuilds from the record.
        sales.wait_condition("regate", "GateReady", "True", timeout=400)
        rebuilt_at = time.monotonic()
        assert rebuilt_at - lost_at >= SETTLE_SECONDS
        assert redis.get(keys.initial) == str(REBUILD_STOCK).encode()
        assert gate.is_open(redis, keys)
        wait_for(crowd.sold_out.is_set, timeout=300, what="sold out")

    outcomes = crowd.outcomes
    assert not [o.user for o in outcomes if o.status == 0], "shoppers gave up"
    assert crowd.retries["503"] > 0  # buyers met the lost gate as "try again", never as a closed sale
    reserved = crowd.reservations()
    assert [o for o in reserved if o.at < lost_at]
    assert [o for o in reserved if o.at > rebuilt_at]
    orders = every_reservation_an_order(platform, uid, crowd)
    assert orders == {o.reservation_id: (o.user, o.quantity) for o in reserved}
    assert sum(quantity for _, quantity in orders.values()) == REBUILD_STOCK  # exactly the stock, no more
    assert len({user for user, _ in orders.values()}) == len(orders)  # nobody bought twice
    counted_once(platform, uid)
    # Redis and PostgreSQL are read one after the other, so the tick that sees the last order written
    # may still count it as reserved too; the next one settles (status.py): wait for that one.
    settled = {"total": REBUILD_STOCK, "remaining": 0, "reserved": 0, "ordered": REBUILD_STOCK, "paid": 0,
               "expired": 0}  # fmt: skip
    sales.wait_status(
        "regate",
        lambda s: s.get("phase") == "SoldOut" and s.get("stock") == settled,
        what=f"sold out with every unit an order: {settled}",
    )
    assert gate.remaining(redis, keys) == 0
    print(
        f"\nrebuild: {len(outcomes)} shoppers, {len([o for o in reserved if o.at < lost_at])} reservations "
        f"before the loss, gate rebuilt {rebuilt_at - lost_at:.1f} s after it (GateLost at "
        f"{lost['lastTransitionTime']}), {len(reserved)} reservations in all; retries {dict(crowd.retries)}"
    )
    sales.delete("regate")
    wait_for(lambda: not sales.exists("regate"), timeout=180, what="deleted")
