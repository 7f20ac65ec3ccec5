"""A FlashSale applied by a platform team becomes an isolated, live sale, sells exactly its stock, and
leaves nothing behind when deleted - through the operator running as a pod with its own RBAC."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import kubernetes
import psycopg

from flashsale_dev.flashsales import FlashSales, sale_spec
from flashsale_dev.operator_install import InstalledOperator, operator_metrics
from flashsale_dev.platform import LocalPlatform
from flashsale_dev.shoppers import buy_with_tokens
from flashsale_dev.waiting import wait_for
from flashsale_sale.contract import SaleKeys, topic_name

STOCK = 20
SHOPPERS = 40
PHASES_OF_A_SELL_OUT = ["Scheduled", "Prewarming", "Ready", "Live", "SoldOut"]


def shop_pods(core: Any) -> dict[str, tuple[str | None, int]]:
    pods = core.list_namespaced_pod("shop").items
    return {
        p.metadata.uid: (p.spec.node_name, sum(c.restart_count for c in p.status.container_statuses or []))
        for p in pods
    }


def mint_tokens(users: list[str], key: str, sale: str) -> list[str]:
    """Tokens from the `flashsale token` console script, as the shop's login service would issue them
    with the platform's key (`key`) for the sale `namespace/name`."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("flashsale")), "token", "--sale", sale, "--users-file", "-"],
        input="\n".join(users),
        env={"FLASHSALE_USER_TOKEN_KEY": key, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.split()


def scraped_reservations(platform: LocalPlatform, job: str) -> float | None:
    """What Prometheus last scraped from the job's every target, summed; None until all are up."""
    if len(platform.prometheus.query(f'up{{job="{job}"}} == 1')) < 2:  # both replicas
        return None
    found = platform.prometheus.query(f'sum(flashsale_gateway_reservations_total{{job="{job}"}})')
    return float(found[0]["value"][1]) if found else None


def check_operational_surfaces_are_off_the_edge_and_scraped(
    core: Any, namespace: str, platform: LocalPlatform, url: str
) -> None:
    """Health, readiness, metrics and OpenAPI: 404 at the edge; Prometheus scrapes every gateway where
    its pod's annotations say (the admin port, which the Service does not expose)."""
    for path in ("/metrics", "/readyz", "/healthz", "/openapi.json"):
        answer = httpx.get(f"{url}{path}", timeout=30)
        assert (answer.status_code, answer.json()["error"]) == (404, "not_found"), path
    service = core.read_namespaced_service("drop-gateway", namespace)
    assert [(p.name, p.target_port) for p in service.spec.ports] == [("http", "http")]
    selector = "app.kubernetes.io/instance=drop,app.kubernetes.io/component=gateway"
    gateways = core.list_namespaced_pod(namespace, label_selector=selector).items
    job = f"{namespace}-drop-gateways"
    scraped_at = platform.prometheus.register_pods(job, gateways)
    try:
        assert sorted(scraped_at) == sorted(f"{p.status.pod_ip}:9090" for p in gateways)
        wait_for(
            lambda: scraped_reservations(platform, job) == STOCK,
            timeout=120,
            what=f"Prometheus to scrape {STOCK} reservations from both gateways' admin ports",
            describe=lambda: str(platform.prometheus.query(f'up{{job="{job}"}}')),
        )
    finally:
        platform.prometheus.unregister_target(job)


def test_a_flashsale_goes_live_on_its_pool_sells_exactly_its_stock_and_is_removed_without_a_trace(
    flashsale_operator: InstalledOperator,
    kube_api: kubernetes.client.ApiClient,
    namespace: str,
    platform: LocalPlatform,
) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    apps = kubernetes.client.AppsV1Api(kube_api)
    shop_before = shop_pods(core)
    sales = FlashSales(kube_api, namespace)
    created = sales.create("drop", sale_spec(stock=STOCK, starts_in=10, prewarm_seconds=5))
    uid = created["metadata"]["uid"]

    # Every child carries the sale as its controlling owner and becomes Ready; pods only on the pool.
    status = sales.wait_status(
        "drop",
        lambda s: (
            (s.get("gateway") or {}).get("readyReplicas") == 2 and bool((s.get("gateway") or {}).get("url"))
        ),
        what="both gateway replicas Ready behind an address",
    )
    for deployment in ("drop-gateway", "drop-consumer"):
        owners = apps.read_namespaced_deployment(deployment, namespace).metadata.owner_references
        assert [(o.kind, o.uid, o.controller) for o in owners] == [("FlashSale", uid, True)]
    # The sale's namespace holds its own derived keys and the processes' logins, no platform secret.
    stored = core.read_namespaced_secret("drop-secrets", namespace).data
    values = {base64.b64decode(value).decode() for value in stored.values()}
    assert flashsale_operator.user_token_key not in values
    assert flashsale_operator.payment_key not in values
    assert platform.postgres.url() not in values
    assert flashsale_operator.sale_key(namespace, "drop") in values
    pods = core.list_namespaced_pod(namespace, label_selector="app.kubernetes.io/instance=drop").items
    assert pods
    assert {core.read_node(p.spec.node_name).metadata.labels["pool"] for p in pods} == {"flashsale"}

    live = sales.wait_phase("drop", "Live")
    assert live["startedAt"] >= created["spec"]["schedule"]["startsAt"][:19]
    url = status["gateway"]["url"]
    order_path = wait_for(
        lambda: httpx.get(f"{url}/api/status", timeout=30).json().get("orderPath"),
        timeout=60,
        what="orderPath",
    )
    users = [f"shopper-{i}" for i in range(SHOPPERS)]
    answers = asyncio.run(
        buy_with_tokens(
            url, mint_tokens(users, flashsale_operator.user_token_key, f"{namespace}/drop"), order_path
        )
    )
    assert answers.count(202) == STOCK
    assert set(answers) <= {202, 409, 410}

    # The tick that sees the last order may still count it as reserved too (Redis, then PostgreSQL,
    # are read one after the other; status.py): the next one settles.
    settled = {"total": STOCK, "remaining": 0, "reserved": 0, "ordered": STOCK, "paid": 0, "expired": 0}
    sales.wait_status(
        "drop",
        lambda s: s.get("phase") == "SoldOut" and s.get("stock") == settled,
        what=f"sold out with every unit an order: {settled}",
    )
    sales.wait_event_reasons("drop", PHASES_OF_A_SELL_OUT, PHASES_OF_A_SELL_OUT)
    metrics = operator_metrics(core)
    assert 'flashsale_operator_sales{phase="SoldOut"}' in metrics
    assert "flashsale_operator_flag_flip_skew_seconds_count" in metrics
    check_operational_surfaces_are_off_the_edge_and_scraped(core, namespace, platform, url)

    # Deleting it closes the sale and removes everything but the orders.
    sales.delete("drop")
    wait_for(lambda: not sales.exists("drop"), timeout=180, what="the FlashSale gone (finalizer done)")
    wait_for(
        lambda: (
            not core.list_namespaced_pod(namespace).items
            and not apps.list_namespaced_deployment(namespace).items
            and not core.list_namespaced_service(namespace).items
        ),
        timeout=180,
        what="every child garbage-collected",
    )
    redis = platform.redis.client()
    assert not redis.keys(f"fs:{SaleKeys(uid).tag}:*")
    assert topic_name(uid) not in platform.kafka.admin().list_topics(timeout=10).topics
    with psycopg.connect(platform.postgres.url()) as conn:
        (orders,) = conn.execute("SELECT count(*) FROM orders WHERE sale_id = %s", (uid,)).fetchone() or (0,)
    assert orders == STOCK
    assert shop_pods(core) == shop_before  # the regular shop never moved nor restarted
