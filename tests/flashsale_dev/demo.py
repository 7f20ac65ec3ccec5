"""`make demo`: a whole sale end to end on a fresh local platform and cluster, through the real parts.

The platform team's part: the operator is installed from manifests/ as a pod (its own
ServiceAccount and RBAC), and a FlashSale (examples/flashsale.yaml, its schedule moved to a few
seconds from now) is applied. The operator does the rest - topic, Secret, gateway and consumer
Deployments on the tainted flashsale pool behind a `LoadBalancer` Service, the prewarm, the flag at
the start second, the status - and the demo only watches it: the phases, a pod reaching the gateway
by its Service's DNS name, the edge caching the static page like a CDN, the crowd buying through
`status.gateway.url` with tokens signed by the sale's key (derived from the platform's), Prometheus
scraping the gateways, the invariants (nothing oversold, no reservation ordered twice, every
accepted reservation an order), and `kubectl delete fsale` leaving the orders and nothing else.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import httpx
import kubernetes
import psycopg
import yaml

from flashsale_dev.cluster import LocalCluster
from flashsale_dev.cluster.nodes import FLASHSALE_PLACEMENT
from flashsale_dev.flashsales import EXAMPLE, FlashSales, example_sale
from flashsale_dev.operator_install import install_operator
from flashsale_dev.paths import REPO_ROOT
from flashsale_dev.platform import LocalPlatform
from flashsale_dev.waiting import wait_for
from flashsale_sale import tokens
from flashsale_sale.contract import SaleKeys, topic_name

NAMESPACE = "flashsale-demo"
STARTS_IN = 20.0  # seconds: the pods start and the stock is prewarmed meanwhile
SHOPPERS = 1000
CONCURRENCY = 100


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


class DemoSale:
    """The example FlashSale, applied with kubectl and watched through its status."""

    def __init__(self, cluster: LocalCluster, api: kubernetes.client.ApiClient) -> None:
        self.cluster = cluster
        self.core = kubernetes.client.CoreV1Api(api)
        self.sales = FlashSales(api, NAMESPACE)
        self.manifest = example_sale(STARTS_IN, prewarm_seconds=10)
        self.name: str = self.manifest["metadata"]["name"]
        self.stock: int = self.manifest["spec"]["stock"]
        self.uid = ""
        self.phases_seen: list[str] = []

    def apply(self) -> None:
        self.core.create_namespace({"metadata": {"name": NAMESPACE}})
        starts = self.manifest["spec"]["schedule"]["startsAt"]
        say(f"kubectl apply -f {EXAMPLE.relative_to(REPO_ROOT)} (startsAt moved to {starts})")
        self.cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-", input_text=yaml.safe_dump(self.manifest))
        self.uid = self.sales.get(self.name)["metadata"]["uid"]

    def follow_until(self, *phases: str, timeout: float = 240) -> dict[str, Any]:
        """Prints every phase the status passes through until one of `phases`."""
        seen = self.phases_seen

        def reached() -> dict[str, Any] | None:
            status = self.sales.status(self.name)
            phase = status.get("phase")
            if phase and (not seen or seen[-1] != phase):
                seen.append(phase)
                say(f"status.phase = {phase}  (stock {status.get('stock')}, gateway {status.get('gateway')})")
            return status if phase in phases else None

        return wait_for(reached, timeout=timeout, interval=0.1, what=f"{self.name} {phases}")

    def gateway_pods(self) -> list[Any]:
        selector = f"app.kubernetes.io/instance={self.name},app.kubernetes.io/component=gateway"
        pods: list[Any] = self.core.list_namespaced_pod(NAMESPACE, label_selector=selector).items
        return pods

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
        name = f"{self.name}-gateway.{NAMESPACE}.svc.cluster.local"
        answer = httpx.get(
            f"http://{pod.status.pod_ip}:8080/get", params={"url": f"http://{name}/api/status"}, timeout=30
        ).json()
        say(f"from pod probe: GET http://{name}/api/status -> {answer['status']} {answer['body']}")
        self.core.delete_namespaced_pod("probe", NAMESPACE)

    def _ready_pod(self, name: str) -> Any:
        pod = self.core.read_namespaced_pod(name, NAMESPACE)
        statuses = pod.status.container_statuses or []
        return pod if statuses and all(c.ready for c in statuses) else None


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
    """SHOPPERS shoppers click at once, retrying 429/503 as the page does; user -> reservation or None.

    `user_key` is the sale's user-token key (derived from the platform's and the sale's name)."""
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


def run_sale(platform: LocalPlatform, cluster: LocalCluster, user_key: str) -> bool:
    with cluster.api_client() as api:
        sale = DemoSale(cluster, api)
        sale.apply()
        sale.follow_until("Ready")
        ready = sale.sales.wait_status(
            sale.name,
            lambda s: bool((s.get("gateway") or {}).get("url") and s["gateway"].get("readyReplicas")),
            what="the gateway's address in status.gateway.url",
        )
        edge = ready["gateway"]["url"]
        say(f"status.gateway.url = {edge} (the LoadBalancer Service's address: the edge)")
        gateway_pods = sale.gateway_pods()
        for pod in gateway_pods:
            say(f"gateway pod {pod.metadata.name} on {pod.spec.node_name} at {pod.status.pod_ip}")
        # As a cluster's Prometheus does: where the pods' annotations say (their admin port).
        scraped_at = platform.prometheus.register_pods(f"{sale.name}-gateways", gateway_pods)
        say(
            f"Prometheus scrapes the gateways at {', '.join(scraped_at)} (the admin port; not in the Service)"
        )
        sale.show_service_dns()
        show_the_cdn(edge)
        say(f"status before the start: {httpx.get(f'{edge}/api/status', timeout=30).json()}")
        live = sale.follow_until("Live")
        starts = sale.manifest["spec"]["schedule"]["startsAt"]
        say(f"the operator flipped the flag at {live.get('startedAt')} (startsAt {starts})")
        order_path = wait_for(
            lambda: httpx.get(f"{edge}/api/status", timeout=30).json().get("orderPath"),
            timeout=60,
            what="the order path at the edge",
        )
        started = time.monotonic()
        sale_key = tokens.sale_token_key(
            user_key.encode(), f"{NAMESPACE}/{sale.name}"
        )  # as the shop derives it
        outcome = asyncio.run(crowd(edge, str(order_path), sale_key))
        accepted = {rid: user for user, rid in outcome.items() if rid}
        say(
            f"{SHOPPERS} shoppers through the edge in {time.monotonic() - started:.1f}s: "
            f"{len(accepted)} reservations, {SHOPPERS - len(accepted)} sold out"
        )
        sold_out = sale.sales.wait_status(
            sale.name,
            lambda s: s.get("phase") == "SoldOut" and (s.get("stock") or {}).get("ordered") == len(accepted),
            what="SoldOut with every reservation an order",
        )
        say(f"status.stock = {sold_out['stock']}")
        say("kubectl get fsale:\n" + cluster.kubectl("get", "fsale", "-n", NAMESPACE))
        scraped = wait_for(
            lambda: platform.prometheus.query(
                f'sum(flashsale_gateway_reservations_total{{sale="{sale.name}"}}) >= {len(accepted)}'
            ),
            timeout=90,
            what="Prometheus to scrape the gateways",
        )
        say(f"Prometheus: sum(flashsale_gateway_reservations_total) = {scraped[0]['value'][1]}")
        orders = _orders(platform, sale.uid)
        with psycopg.connect(platform.postgres.url()) as conn:
            ledger = conn.execute(
                "SELECT remaining FROM stock_ledger WHERE sale_id = %s", (sale.uid,)
            ).fetchone()
        say(f"PostgreSQL: {len(orders)} orders; ledger remaining {ledger[0] if ledger else None}")

        say(f"kubectl delete fsale {sale.name}")
        cluster.kubectl("delete", "fsale", sale.name, "-n", NAMESPACE, "--timeout=180s")
        wait_for(
            lambda: not sale.gateway_pods() and not sale.core.list_namespaced_service(NAMESPACE).items,
            timeout=180,
            what="the sale's children garbage-collected",
        )
        keys_left = platform.redis.client().keys(f"fs:{SaleKeys(sale.uid).tag}:*")
        topic_left = topic_name(sale.uid) in platform.kafka.admin().list_topics(timeout=10).topics
        kept = len(_orders(platform, sale.uid))
        say(f"after delete: {len(keys_left)} Redis keys, topic left: {topic_left}, orders kept: {kept}")

    checks = {
        "never oversold": len(orders) <= sale.stock,
        "sold out exactly": len(accepted) == sale.stock and ledger == (0,),
        "no reservation ordered twice": len({rid for rid, _ in orders}) == len(orders),
        "every accepted reservation is an order": {str(rid): str(u) for rid, u in orders} == accepted,
        "nothing left but the orders after delete": not keys_left
        and not topic_left
        and len(_orders(platform, sale.uid)) == len(orders),
    }
    for name, ok in checks.items():
        say(f"{'PASS' if ok else 'FAIL'}: {name}")
    return all(checks.values())


def _orders(platform: LocalPlatform, sale_id: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(platform.postgres.url()) as conn:
        return conn.execute(
            "SELECT reservation_id, user_id FROM orders WHERE sale_id = %s", (sale_id,)
        ).fetchall()


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
        installed = install_operator(platform.cluster, platform)
        say("operator installed from manifests/: " + platform.cluster.kubectl(
            "get", "pods", "-n", "flashsale-system", "-o", "wide").strip())  # fmt: skip
        ok = run_sale(platform, platform.cluster, installed.user_token_key)
    say("platform stopped, nothing left behind" if not platform.leftover_processes() else "LEFTOVERS!")
    say("sale OK" if ok else "sale FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
