"""`spec.queue.mode: dedicated`: a sale with a Kafka broker of its own (a StatefulSet on the sale's
pool, its data on a claim) sells exactly its stock through `status.gateway.url`, and
`kubectl delete fsale` takes the broker, its Service, its claim and the claim's data with it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import kubernetes
import psycopg

from flashsale_dev.cluster.launcher import LocalCluster
from flashsale_dev.flashsales import FlashSales, sale_spec
from flashsale_dev.journey import RESTRICTED
from flashsale_dev.operator_install import InstalledOperator
from flashsale_dev.platform import LocalPlatform
from flashsale_dev.shoppers import buy_with_tokens
from flashsale_dev.waiting import wait_for
from flashsale_operator import queue
from flashsale_operator.render import SaleRef
from flashsale_sale.contract import topic_name
from flashsale_sale.tokens import mint_many

STOCK = 30
SHOPPERS = 40
NAME = "own-queue"


def ready_broker_pod(core: Any, namespace: str) -> Any:
    def ready() -> Any:
        try:
            pod = core.read_namespaced_pod(f"{NAME}-kafka-0", namespace)
        except kubernetes.client.exceptions.ApiException:
            return None
        conditions = {c.type: c.status for c in pod.status.conditions or []}
        return pod if conditions.get("Ready") == "True" else None

    return wait_for(ready, timeout=180, what="the broker pod Ready")


def test_a_dedicated_queue_sale_sells_its_stock_on_its_own_broker_and_takes_it_away_when_deleted(
    flashsale_operator: InstalledOperator,
    kube_api: kubernetes.client.ApiClient,
    namespace: str,
    platform: LocalPlatform,
    cluster: LocalCluster,
) -> None:
    core, apps = kubernetes.client.CoreV1Api(kube_api), kubernetes.client.AppsV1Api(kube_api)
    core.patch_namespace(namespace, {"metadata": {"labels": RESTRICTED}})  # the broker's pod is hardened too
    sales = FlashSales(kube_api, namespace)
    applied = time.monotonic()
    created = sales.create(
        NAME,
        sale_spec(
            stock=STOCK,
            starts_in=45,
            prewarm_seconds=5,
            queue={"partitions": 3, "mode": "dedicated"},
            gateway={"replicas": 1},
        ),
    )
    uid = created["metadata"]["uid"]
    ref = SaleRef(NAME, namespace, uid)

    # The broker: one pod of the sale's StatefulSet on the flashsale pool, its claim Bound.
    broker = ready_broker_pod(core, namespace)
    broker_ready = time.monotonic() - applied
    assert core.read_node(broker.spec.node_name).metadata.labels["pool"] == "flashsale"
    statefulset = apps.read_namespaced_stateful_set(f"{NAME}-kafka", namespace)
    assert [(o.kind, o.uid) for o in statefulset.metadata.owner_references] == [("FlashSale", uid)]
    service = core.read_namespaced_service(f"{NAME}-kafka", namespace)
    assert service.spec.cluster_ip == "None"
    claim = core.read_namespaced_persistent_volume_claim(f"data-{NAME}-kafka-0", namespace)
    assert claim.status.phase == "Bound"
    volume_name = claim.spec.volume_name
    directory = Path(core.read_persistent_volume(volume_name).spec.host_path.path)
    assert directory.parent == cluster.node_agent.dir / "local-path"
    # The topic lives on the sale's broker, not on the platform's Kafka.
    formatted = directory / "logs" / "meta.properties"
    wait_for(formatted.is_file, timeout=60, what="the log dir formatted")
    assert topic_name(uid) not in platform.kafka.admin().list_topics(timeout=10).topics

    status = sales.wait_status(
        NAME,
        lambda s: (
            bool((s.get("gateway") or {}).get("readyReplicas")) and bool((s.get("gateway") or {}).get("url"))
        ),
        what="the gateway Ready behind an address",
        timeout=180,
    )
    for deployment in (f"{NAME}-gateway", f"{NAME}-consumer"):
        (container,) = apps.read_namespaced_deployment(deployment, namespace).spec.template.spec.containers
        env = {e.name: e.value for e in container.env}
        assert env["FLASHSALE_KAFKA_BOOTSTRAP_SERVERS"] == f"{queue.broker_host(ref)}:{queue.BROKER_PORT}"

    sales.wait_phase(NAME, "Live", timeout=180)
    url = status["gateway"]["url"]
    order_path = wait_for(
        lambda: httpx.get(f"{url}/api/status", timeout=30).json().get("orderPath"),
        timeout=60,
        what="orderPath",
    )
    users = [f"own-queue-shopper-{i}" for i in range(SHOPPERS)]
    tokens = mint_many(flashsale_operator.sale_key(namespace, NAME).encode(), users)
    answers = asyncio.run(buy_with_tokens(url, tokens, order_path))
    assert answers.count(202) == STOCK
    assert set(answers) <= {202, 409, 410}

    sold_out = sales.wait_status(
        NAME,
        lambda s: s.get("phase") == "SoldOut" and (s.get("stock") or {}).get("ordered") == STOCK,
        what="sold out with every unit an order",
        timeout=180,
    )
    assert sold_out["stock"]["remaining"] == 0
    with psycopg.connect(platform.postgres.url()) as conn:
        (orders,) = conn.execute("SELECT count(*) FROM orders WHERE sale_id = %s", (uid,)).fetchone() or (0,)
    assert orders == STOCK

    # kubectl delete: the sale, then its broker, headless Service, claim, volume and data directory.
    cluster.kubectl("delete", "fsale", NAME, "-n", namespace, "--wait=false")
    wait_for(lambda: not sales.exists(NAME), timeout=180, what="the FlashSale gone (finalizer done)")

    def nothing_left() -> bool:
        names = {v.metadata.name for v in core.list_persistent_volume().items}
        return (
            not core.list_namespaced_pod(namespace).items
            and not apps.list_namespaced_stateful_set(namespace).items
            and not apps.list_namespaced_deployment(namespace).items
            and not core.list_namespaced_service(namespace).items
            and not core.list_namespaced_persistent_volume_claim(namespace).items
            and volume_name not in names
            and not directory.exists()
        )

    wait_for(nothing_left, timeout=180, what="broker, Service, claim, volume and data gone")
    with psycopg.connect(platform.postgres.url()) as conn:
        (kept,) = conn.execute("SELECT count(*) FROM orders WHERE sale_id = %s", (uid,)).fetchone() or (0,)
    assert kept == STOCK  # the orders stay
    print(f"\nbroker Ready {broker_ready:.1f} s after the sale was applied")
