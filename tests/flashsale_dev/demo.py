"""`make demo`: a whole sale on a fresh local platform and cluster, through the product's real parts.

The sale's gateway and consumer run as pods of the project's images on the tainted flashsale pool,
configured by environment and a mounted Secret as the operator will render them; shoppers reach the
gateway through a `LoadBalancer` Service whose edge caches the static page like a CDN; a pod reaches
the gateway by its Service's DNS name; the crowd buys through the Redis gate, Kafka and the
consumers into PostgreSQL; Prometheus scrapes the gateways. It ends by checking the sale's
invariants: nothing oversold, no reservation ordered twice, every accepted reservation an order.
(Until the operator lands, the demo applies those objects and flips the start flag itself.)
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import kubernetes
import psycopg

from flashsale_dev import demo_sale
from flashsale_dev.cluster import LocalCluster
from flashsale_dev.cluster.nodes import FLASHSALE_PLACEMENT
from flashsale_dev.platform import LocalPlatform
from flashsale_dev.waiting import wait_for
from flashsale_sale import gate, tokens
from flashsale_sale.contract import SaleKeys, topic_name
from flashsale_sale.db import migrate

NAMESPACE = "flashsale-demo"
SALE = "summer-drop"
STOCK = 100
SHOPPERS = 1000
CONCURRENCY = 100


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


class DemoSale:
    """One sale deployed by hand onto the local cluster, against the platform's middleware."""

    def __init__(
        self, platform: LocalPlatform, cluster: LocalCluster, api: kubernetes.client.ApiClient
    ) -> None:
        self.platform = platform
        self.cluster = cluster
        self.core = kubernetes.client.CoreV1Api(api)
        self.apps = kubernetes.client.AppsV1Api(api)
        self.sale_id = uuid.uuid4().hex
        self.keys = SaleKeys(self.sale_id)
        self.user_key = f"demo-user-token-key-{uuid.uuid4().hex}"
        self.redis = platform.redis.client()

    def deploy(self) -> str:
        """Prewarms the gate, applies the sale's objects, waits for the edge; returns its base URL."""
        platform = self.platform
        platform.kafka.create_topic(topic_name(self.sale_id), partitions=6)
        with platform.postgres.connect() as conn:
            migrate(conn)
        gate.prewarm(self.redis, self.keys, STOCK)
        starts = datetime.now(UTC) + timedelta(minutes=5)
        settings = {
            "FLASHSALE_SALE_NAME": SALE,
            "FLASHSALE_SALE_ID": self.sale_id,
            "FLASHSALE_STOCK": str(STOCK),
            "FLASHSALE_PER_USER_LIMIT": "1",
            "FLASHSALE_STARTS_AT": starts.isoformat(),
            "FLASHSALE_ENDS_AT": (starts + timedelta(hours=1)).isoformat(),
            "FLASHSALE_REDIS_URL": platform.redis.url(),
            "FLASHSALE_KAFKA_BOOTSTRAP_SERVERS": platform.kafka.bootstrap_servers,
            "FLASHSALE_PRODUCT_SKU": "KETTLE-1",
            "FLASHSALE_PRODUCT_NAME": "Copper kettle",
            "FLASHSALE_PRODUCT_PRICE": "49.00",
            "FLASHSALE_PRODUCT_CURRENCY": "EUR",
            "FLASHSALE_PRODUCT_DESCRIPTION": "One hundred hand-made kettles, once.",
        }
        secrets = {
            "FLASHSALE_USER_TOKEN_KEY": self.user_key,
            "FLASHSALE_ORDER_PATH_KEY": f"demo-order-path-key-{uuid.uuid4().hex}",
            "FLASHSALE_DATABASE_URL": platform.postgres.url(),
        }
        self.core.create_namespace({"metadata": {"name": NAMESPACE}})
        secret_name = f"{SALE}-secrets"
        self.core.create_namespaced_secret(NAMESPACE, demo_sale.secret(secret_name, secrets))
        self.apps.create_namespaced_deployment(NAMESPACE, demo_sale.gateway(SALE, 2, settings, secret_name))
        self.apps.create_namespaced_deployment(NAMESPACE, demo_sale.consumer(SALE, 2, settings, secret_name))
        self.core.create_namespaced_service(NAMESPACE, demo_sale.gateway_service(SALE))
        pods = wait_for(lambda: self._ready_pods("gateway", 2), timeout=180, what="2 gateway pods Ready")
        for pod in pods:
            say(f"gateway pod {pod.metadata.name} on {pod.spec.node_name} at {pod.status.pod_ip}")
            platform.prometheus.register_target(f"gateway-{pod.metadata.name}", f"{pod.status.pod_ip}:8080")
        address = wait_for(self._ingress, timeout=120, what="the LoadBalancer's ingress address")
        say(f"LoadBalancer Service {SALE}-gateway: ingress {address} (the edge, serving the host)")
        return f"http://{address}"

    def show_service_dns(self) -> None:
        """A pod asks the gateway for the sale's status by the Service's DNS name, as the shop would."""
        probe = {
            "name": "probe",
            "image": "flashsale/probe:demo",
            "ports": [{"containerPort": 8080}],
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1},
        }
        self.core.create_namespaced_pod(
            NAMESPACE, {"metadata": {"name": "probe"}, "spec": {"containers": [probe], **FLASHSALE_PLACEMENT}}
        )
        pod = wait_for(lambda: self._ready_pod("probe"), timeout=120, what="the probe pod Ready")
        name = f"{SALE}-gateway.{NAMESPACE}.svc.cluster.local"
        answer = httpx.get(
            f"http://{pod.status.pod_ip}:8080/get", params={"url": f"http://{name}/api/status"}, timeout=30
        ).json()
        say(f"from pod probe: GET http://{name}/api/status -> {answer['status']} {answer['body']}")

    def _ready_pods(self, app: str, count: int) -> list[Any] | None:
        pods = self.core.list_namespaced_pod(NAMESPACE, label_selector=f"app.kubernetes.io/name={app}").items
        ready = [
            p
            for p in pods
            if p.status.container_statuses and all(c.ready for c in p.status.container_statuses)
        ]
        return ready if len(ready) >= count else None

    def _ready_pod(self, name: str) -> Any:
        pod = self.core.read_namespaced_pod(name, NAMESPACE)
        statuses = pod.status.container_statuses or []
        return pod if statuses and all(c.ready for c in statuses) else None

    def _ingress(self) -> str | None:
        status = self.core.read_namespaced_service(f"{SALE}-gateway", NAMESPACE).status
        ingress = status.load_balancer.ingress if status and status.load_balancer else None
        return ingress[0].ip if ingress else None


def show_the_cdn(edge: str) -> None:
    for _ in range(2):
        page = httpx.get(f"{edge}/", timeout=30)
        cache = page.headers.get("x-cache-status")
        say(
            f"GET / through the edge: {page.status_code}, X-Cache-Status {cache}, "
            f"Cache-Control {page.headers.get('cache-control')!r}"
        )
    status = httpx.get(f"{edge}/status.js", timeout=30)
    say(f"GET /status.js: X-Cache-Status {status.headers.get('x-cache-status')} (never cached)")


async def crowd(edge: str, order_path: str, user_key: str) -> dict[str, str | None]:
    """SHOPPERS shoppers click at once, retrying 429/503 as the page does; user -> reservation or None."""
    users = [f"shopper-{i}" for i in range(SHOPPERS)]
    minted = tokens.mint_many(user_key.encode(), users)
    slots = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(base_url=edge, timeout=60) as client:

        async def shopper(user: str, token: str) -> tuple[str, str | None]:
            async with slots:
                for _ in range(200):
                    answer = await client.post(order_path, headers={"Authorization": f"Bearer {token}"})
                    if answer.status_code == 202:
                        return user, str(answer.json()["reservationId"])
                    if answer.status_code in (409, 410):
                        return user, None
                    await asyncio.sleep(min(float(answer.headers.get("Retry-After", "0.1")), 0.5))
                return user, None

        return dict(await asyncio.gather(*(shopper(u, t) for u, t in zip(users, minted, strict=True))))


def run_sale(platform: LocalPlatform, cluster: LocalCluster) -> bool:
    with cluster.api_client() as api:
        sale = DemoSale(platform, cluster, api)
        edge = sale.deploy()
        sale.show_service_dns()
        show_the_cdn(edge)
        say(f"status before the flip: {httpx.get(f'{edge}/api/status', timeout=30).json()}")
        gate.set_open(sale.redis, sale.keys, True)

        def live_status() -> dict[str, Any] | None:
            status: dict[str, Any] = httpx.get(f"{edge}/api/status", timeout=30).json()
            return status if status["state"] == "live" else None

        live = wait_for(live_status, timeout=60, what="the sale live at the edge")
        say(f"flag flipped: {live}")
        started = time.monotonic()
        outcome = asyncio.run(crowd(edge, str(live["orderPath"]), sale.user_key))
        accepted = {rid: user for user, rid in outcome.items() if rid}
        say(
            f"{SHOPPERS} shoppers through the edge in {time.monotonic() - started:.1f}s: "
            f"{len(accepted)} reservations, {SHOPPERS - len(accepted)} sold out"
        )

        def ordered() -> list[tuple[Any, ...]] | None:
            with psycopg.connect(platform.postgres.url()) as conn:
                rows = conn.execute(
                    "SELECT reservation_id, user_id FROM orders WHERE sale_id = %s", (sale.sale_id,)
                ).fetchall()
            return rows if len(rows) >= len(accepted) else None

        orders = wait_for(ordered, timeout=180, what="every reservation an order in PostgreSQL")
        with psycopg.connect(platform.postgres.url()) as conn:
            ledger = conn.execute(
                "SELECT remaining FROM stock_ledger WHERE sale_id = %s", (sale.sale_id,)
            ).fetchone()
        say(f"consumers wrote {len(orders)} orders; ledger remaining {ledger[0] if ledger else None}")
        scraped = wait_for(
            lambda: platform.prometheus.query(
                f'sum(flashsale_gateway_reservations_total{{sale="{SALE}"}}) >= {len(accepted)}'
            ),
            timeout=90,
            what="Prometheus to scrape the gateways",
        )
        say(f"Prometheus: sum(flashsale_gateway_reservations_total) = {scraped[0]['value'][1]}")
        remaining = gate.remaining(sale.redis, sale.keys)

    checks = {
        "never oversold": len(orders) <= STOCK and (remaining or 0) >= 0,
        "sold out exactly": len(accepted) == STOCK and remaining == 0 and ledger == (0,),
        "no reservation ordered twice": len({rid for rid, _ in orders}) == len(orders),
        "every accepted reservation is an order": {str(rid): str(u) for rid, u in orders} == accepted,
    }
    for name, ok in checks.items():
        say(f"{'PASS' if ok else 'FAIL'}: {name}")
    return all(checks.values())


def main() -> int:
    say(
        "starting the local platform: Redis, PostgreSQL, Kafka, Prometheus, Kubernetes (etcd, apiserver, "
        "controller-manager, scheduler, kwok, node agent, service proxy, CoreDNS, LoadBalancer edge)"
    )
    started = time.monotonic()
    with LocalPlatform(with_cluster=True) as platform:
        assert platform.cluster is not None
        say(f"platform up in {time.monotonic() - started:.1f}s")
        say("cluster nodes:\n" + platform.cluster.kubectl("get", "nodes", "-L", "pool"))
        ok = run_sale(platform, platform.cluster)
    say("platform stopped, nothing left behind" if not platform.leftover_processes() else "LEFTOVERS!")
    say("sale OK" if ok else "sale FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
