"""`make demo`: a smoke sale through the real middleware on a fresh local platform.

Until the operator and the gateway exist, this drives the data path by hand with the same parts
they will use: stock prewarmed into Redis, one atomic Lua gate call per shopper, reservations
published to Kafka with acks=all, a consumer group writing orders into PostgreSQL (unique per
reservation, offsets committed after the database commit), and the numbers scraped by Prometheus.
It ends by checking the sale's invariants: nothing oversold, no reservation ordered twice, none lost.
"""

from __future__ import annotations

import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import kubernetes
from confluent_kafka import Consumer, Producer
from prometheus_client import CollectorRegistry, Counter, start_http_server

from flashsale_dev.cluster import LocalCluster
from flashsale_dev.cluster.nodes import FLASHSALE_PLACEMENT, deployment
from flashsale_dev.platform import LocalPlatform
from flashsale_dev.waiting import wait_for

STOCK = 100
SHOPPERS = 1000
GATE = """
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 'DUPLICATE' end
if tonumber(redis.call('GET', KEYS[1]) or '0') <= 0 then return 'SOLD_OUT' end
redis.call('DECR', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[1])
return 'RESERVED'
"""
SCHEMA = """
CREATE TABLE orders (reservation text PRIMARY KEY, shopper text NOT NULL UNIQUE, created_at timestamptz
                     NOT NULL DEFAULT now());
CREATE TABLE stock_ledger (sku text PRIMARY KEY, remaining int NOT NULL CHECK (remaining >= 0));
"""


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def run_sale(platform: LocalPlatform) -> bool:
    sku, topic = "sku-1", f"sale-{uuid.uuid4().hex[:8]}"
    registry = CollectorRegistry()
    reserved = Counter("demo_reservations", "Reservations accepted by the gate.", registry=registry)
    ordered = Counter("demo_orders", "Orders written to PostgreSQL.", registry=registry)
    metrics_port = platform.reserve_port()
    server, thread = start_http_server(metrics_port, addr="127.0.0.1", registry=registry)
    platform.prometheus.register_target("demo", f"127.0.0.1:{metrics_port}")

    with platform.postgres.connect() as db:
        db.execute(SCHEMA)
        db.execute("INSERT INTO stock_ledger VALUES (%s, %s)", (sku, STOCK))
        db.commit()
    platform.kafka.create_topic(topic, partitions=3)
    redis = platform.redis.client()
    redis.set(f"{{{sku}}}:stock", STOCK)
    gate = redis.register_script(GATE)
    say(f"prewarmed {STOCK} units of {sku}; {SHOPPERS} shoppers click at once")

    producer = Producer({"bootstrap.servers": platform.kafka.bootstrap_servers, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5})  # fmt: skip

    def click(shopper: str) -> str:
        outcome = gate(keys=[f"{{{sku}}}:stock", f"{{{sku}}}:buyers"], args=[shopper]).decode()
        if outcome == "RESERVED":
            producer.produce(topic, f"{uuid.uuid4()}:{shopper}".encode(), key=shopper.encode())
            reserved.inc()
        return str(outcome)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as crowd:
        outcomes = list(crowd.map(click, [f"shopper-{i}" for i in range(SHOPPERS)]))
    assert producer.flush(60) == 0, "a reservation was not acknowledged by Kafka"
    say(f"gate: {outcomes.count('RESERVED')} reserved, {outcomes.count('SOLD_OUT')} sold out "
        f"in {time.monotonic() - started:.2f}s")  # fmt: skip

    consume_orders(platform, topic, sku, ordered, expected=outcomes.count("RESERVED"))
    scraped = wait_for(lambda: platform.prometheus.query('demo_orders_total{job="demo"} > 0'), timeout=60,
                       what="Prometheus to scrape the demo's metrics")  # fmt: skip
    say(f"Prometheus: demo_orders_total = {scraped[0]['value'][1]}")
    server.shutdown()
    server.server_close()
    thread.join()

    with platform.postgres.connect() as db:
        counted = db.execute("SELECT count(*), count(DISTINCT reservation) FROM orders").fetchone()
        remaining = db.execute("SELECT remaining FROM stock_ledger WHERE sku = %s", (sku,)).fetchone()
    orders, distinct = (int(str(n)) for n in counted or (-1, -1))
    redis_stock = int(redis.get(f"{{{sku}}}:stock") or -1)
    checks = {
        "never oversold": 0 <= orders <= STOCK and redis_stock >= 0,
        "sold out exactly": orders == STOCK and redis_stock == 0 and remaining == (0,),
        "no reservation ordered twice": orders == distinct,
        "no accepted reservation lost": orders == outcomes.count("RESERVED"),
    }
    for name, ok in checks.items():
        say(f"{'PASS' if ok else 'FAIL'}: {name}")
    return all(checks.values())


def consume_orders(platform: LocalPlatform, topic: str, sku: str, ordered: Counter, expected: int) -> None:
    """Orders into PostgreSQL in batches; offsets are committed only after the database commit."""
    consumer = Consumer({"bootstrap.servers": platform.kafka.bootstrap_servers, "group.id": "demo-orders",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
    consumer.subscribe([topic])
    written = 0
    deadline = time.monotonic() + 120
    with platform.postgres.connect() as db:
        while written < expected and time.monotonic() < deadline:
            batch = [m for m in consumer.consume(num_messages=100, timeout=1.0) if m.error() is None]
            if not batch:
                continue
            with db.transaction():
                for message in batch:
                    reservation, shopper = (message.value() or b"").decode().split(":", 1)
                    inserted = db.execute(
                        "INSERT INTO orders (reservation, shopper) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                        (reservation, shopper),
                    ).rowcount
                    db.execute(
                        "UPDATE stock_ledger SET remaining = remaining - %s WHERE sku = %s", (inserted, sku)
                    )
                    written += inserted
                    ordered.inc(inserted)
            consumer.commit(asynchronous=False)
    consumer.close()
    say(f"consumers wrote {written} orders to PostgreSQL")


def show_the_isolated_pool(cluster: LocalCluster) -> None:
    """Pods of a project image land on the tainted flashsale pool and really answer HTTP there."""
    echo = {
        "name": "echo",
        "image": "flashsale/echo:demo",
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1},
    }
    with cluster.api_client() as api:
        kubernetes.client.AppsV1Api(api).create_namespaced_deployment(
            "default", deployment("echo", 2, [echo], FLASHSALE_PLACEMENT)
        )
        core = kubernetes.client.CoreV1Api(api)

        def ready_pods() -> list[Any] | None:
            pods = core.list_namespaced_pod("default", label_selector="app=echo").items
            ready = [p for p in pods if p.status.pod_ip and p.status.container_statuses
                     and p.status.container_statuses[0].ready]  # fmt: skip
            return ready if len(ready) == 2 else None

        for pod in wait_for(ready_pods, timeout=120, what="2 echo pods ready on the flashsale pool"):
            answer = httpx.get(f"http://{pod.status.pod_ip}:8080/", timeout=5).json()
            where = f"{pod.metadata.name} on {pod.spec.node_name} at {pod.status.pod_ip}"
            say(f"pod {where} answers from local process {answer['pid']}")
    say(
        "shop pods (simulated by kwok) on their own pool:\n"
        + cluster.kubectl("get", "pods", "-n", "shop", "-o", "wide")
    )


def main() -> int:
    say("starting the local platform: Redis, PostgreSQL, Kafka, Prometheus, Kubernetes (etcd, apiserver, "
        "controller-manager, scheduler, kwok, node agent)")  # fmt: skip
    started = time.monotonic()
    with LocalPlatform(with_cluster=True) as platform:
        say(f"platform up in {time.monotonic() - started:.1f}s: {platform.exports()}")
        assert platform.cluster is not None
        say("cluster nodes:\n" + platform.cluster.kubectl("get", "nodes", "-L", "pool"))
        show_the_isolated_pool(platform.cluster)
        ok = run_sale(platform)
    say("platform stopped, nothing left behind" if not platform.leftover_processes() else "LEFTOVERS!")
    say("smoke sale OK" if ok else "smoke sale FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
