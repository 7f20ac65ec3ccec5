"""A FlashSale applied by a platform team becomes an isolated, live sale, sells exactly its stock, and
leaves nothing behind when deleted - through the operator running as a pod with its own RBAC.

The journey itself (flashsale_dev.journey) is the kind tier's too; this tier adds what only the local
platform shows: the children's owners and placement, the sale's Secret, the operator's metrics,
Prometheus scraping the gateways, and the middleware left clean.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import httpx
import kubernetes
import psycopg
import pytest
from kubernetes.client.exceptions import ApiException

from flashsale_dev.journey import STOCK, SaleSeen, run_operator_journey
from flashsale_dev.operator_install import InstalledOperator, operator_metrics
from flashsale_dev.platform import LocalPlatform
from flashsale_dev.waiting import wait_for
from flashsale_sale.contract import SaleKeys, topic_name


@dataclass(frozen=True)
class LocalJourneyCluster:
    """The local cluster as the journey sees it: the session's operator, the gateway's Service address
    reached directly (the local load balancer's), the orders in the platform's PostgreSQL."""

    api: kubernetes.client.ApiClient
    operator: InstalledOperator
    platform: LocalPlatform
    sale_overrides: Mapping[str, Any] = field(default_factory=dict)

    def install_operator(self) -> InstalledOperator:
        return self.operator  # the session's (flashsale_operator fixture)

    def gateway(self, namespace: str, service: str, status_url: str) -> AbstractContextManager[str]:
        return nullcontext(status_url)

    def count_orders(self, sale_uid: str) -> int:
        with psycopg.connect(self.platform.postgres.url()) as conn:
            found = conn.execute("SELECT count(*) FROM orders WHERE sale_id = %s", (sale_uid,)).fetchone()
        return int(found[0]) if found else 0


def shop_pods(core: Any) -> dict[str, tuple[str | None, int]]:
    pods = core.list_namespaced_pod("shop").items
    return {
        p.metadata.uid: (p.spec.node_name, sum(c.restart_count for c in p.status.container_statuses or []))
        for p in pods
    }


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


def check_children_are_the_sales_own_and_on_its_pool(
    api: kubernetes.client.ApiClient, sale: SaleSeen, owner_database_url: str
) -> None:
    """Every child carries the sale as its controlling owner; its pods run only on the sales' pool;
    its namespace holds the sale's own derived keys and the processes' logins, no platform secret."""
    core, apps = kubernetes.client.CoreV1Api(api), kubernetes.client.AppsV1Api(api)
    for deployment in ("drop-gateway", "drop-consumer"):
        owners = apps.read_namespaced_deployment(deployment, sale.namespace).metadata.owner_references
        assert [(o.kind, o.uid, o.controller) for o in owners] == [("FlashSale", sale.uid, True)]
    stored = core.read_namespaced_secret("drop-secrets", sale.namespace).data
    values = {base64.b64decode(value).decode() for value in stored.values()}
    assert sale.operator.user_token_key not in values
    assert sale.operator.payment_key not in values
    assert owner_database_url not in values
    assert sale.operator.sale_key(sale.namespace, "drop") in values
    pods = core.list_namespaced_pod(sale.namespace, label_selector="app.kubernetes.io/instance=drop").items
    assert pods
    assert {core.read_node(p.spec.node_name).metadata.labels["pool"] for p in pods} == {"flashsale"}


def check_the_namespace_refuses_a_pod_that_is_not_hardened(core: Any, namespace: str) -> None:
    """The journey's `restricted` label is enforced here: the sale's pods were admitted on their merit."""
    pod = {
        "metadata": {"name": "not-hardened"},
        "spec": {"containers": [{"name": "c", "image": "flashsale/probe:dev"}]},
    }
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(namespace, pod, dry_run="All")
    assert refused.value.status == 403
    assert "violates PodSecurity" in refused.value.body


def test_a_flashsale_goes_live_on_its_pool_sells_exactly_its_stock_and_is_removed_without_a_trace(
    flashsale_operator: InstalledOperator,
    kube_api: kubernetes.client.ApiClient,
    namespace: str,
    platform: LocalPlatform,
) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    shop_before = shop_pods(core)

    def when_ready(sale: SaleSeen) -> None:
        check_children_are_the_sales_own_and_on_its_pool(kube_api, sale, platform.postgres.url())
        check_the_namespace_refuses_a_pod_that_is_not_hardened(core, sale.namespace)

    def when_sold_out(sale: SaleSeen) -> None:
        metrics = operator_metrics(core)
        assert 'flashsale_operator_sales{phase="SoldOut"}' in metrics
        assert "flashsale_operator_flag_flip_skew_seconds_count" in metrics
        check_operational_surfaces_are_off_the_edge_and_scraped(
            core, sale.namespace, platform, sale.gateway_url
        )

    cluster = LocalJourneyCluster(kube_api, flashsale_operator, platform)
    sale = run_operator_journey(cluster, namespace, when_ready=when_ready, when_sold_out=when_sold_out)

    # The journey saw the children go and the orders stay; the middleware keeps nothing else.
    redis = platform.redis.client()
    assert not redis.keys(f"fs:{SaleKeys(sale.uid).tag}:*")
    assert topic_name(sale.uid) not in platform.kafka.admin().list_topics(timeout=10).topics
    assert shop_pods(core) == shop_before  # the regular shop never moved nor restarted
