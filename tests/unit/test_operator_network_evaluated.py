"""The sale's rendered NetworkPolicies, evaluated offline: every connection the product makes gets
through, and the ones it must not make do not (flashsale_dev.netpol, tested on the Kubernetes docs'
cases in test_netpol_evaluator.py).

The cluster modelled here: two sales (`kettle` and `teapot`) in the shop's sale namespace, rendered by
the operator with the same platform config as the golden files; the shop's own pods; CoreDNS in
kube-system; Prometheus in `monitoring` (the default `metrics_scrapers`); the operator in
flashsale-system; the platform's Kafka as a headless Service's pod in `middleware` plus one broker
by address; Redis and PostgreSQL outside the cluster by address; the API server; the nodes; the
internet.
"""

from __future__ import annotations

from typing import Any, Final

import pytest

from flashsale_dev.netpol import Cluster, ContainerPort, Host, Namespace, Pod, pod_from_manifest
from flashsale_operator.config import OperatorConfig
from flashsale_operator.render import SaleRef, children
from flashsale_operator.spec import parse_spec

SALES_NS: Final = "shop-sales"
KETTLE: Final = SaleRef(name="kettle", namespace=SALES_NS, uid="6f1c2a9e-0b7d-4c1e-9a53-2d8e4f7b1c30")
TEAPOT: Final = SaleRef(name="teapot", namespace=SALES_NS, uid="0f1c2a9e-0b7d-4c1e-9a53-2d8e4f7b1c31")
ELSEWHERE: Final = SaleRef(name="kettle", namespace="other-shop", uid="1f1c2a9e-0b7d-4c1e-9a53-2d8e4f7b1c32")
NODE: Final = "flashsale-1"

CONFIG: Final = OperatorConfig(
    redis_url="redis://10.0.0.5:6379/0",
    kafka_bootstrap_servers="kafka-0.kafka.middleware.svc:9092,10.0.0.7:9093",
    database_url="postgresql://flashsale:hunter2@10.0.0.9:5432/flashsale",  # type: ignore[arg-type]
    user_token_key="platform-user-token-key-0123456789",  # type: ignore[arg-type]
    payment_key="platform-payment-key-0123456789",  # type: ignore[arg-type]
    gateway_database_url="postgresql://sale_gateway:gw@10.0.0.9:5432/flashsale",  # type: ignore[arg-type]
    consumer_database_url="postgresql://sale_consumer:co@10.0.0.9:5432/flashsale",  # type: ignore[arg-type]
)
SPEC: Final[dict[str, Any]] = {
    "product": {"sku": "KETTLE-1", "name": "Copper kettle", "price": "49.00", "currency": "EUR"},
    "stock": 100,
    "perUserLimit": 1,
    "schedule": {"startsAt": "2030-11-11T11:11:00Z", "endsAt": "2030-11-11T12:11:00Z"},
    "paymentTimeoutSeconds": 900,
}

REDIS = Host("10.0.0.5")
KAFKA_BY_ADDRESS = Host("10.0.0.7")
POSTGRES = Host("10.0.0.9")
API_SERVICE = Host("10.96.0.1")  # the `kubernetes` Service's ClusterIP, 443
API_SERVER = Host("192.168.10.2")  # the address it forwards to, 6443
INTERNET = Host("203.0.113.50")
OWN_NODE = Host("192.168.10.21", node=NODE)  # the sale pods' node: the kubelet probes from here
OTHER_NODE = Host("192.168.10.22", node="flashsale-2")
KAFKA_POD = Pod(
    "middleware", "kafka-0", "10.244.9.10", {"app": "kafka"}, (ContainerPort(9092, "kafka"),), "system-1"
)
COREDNS = Pod(
    "kube-system",
    "coredns-0",
    "10.244.0.2",
    {"k8s-app": "kube-dns"},
    (ContainerPort(53, "dns", "UDP"), ContainerPort(53, "dns-tcp")),
    "system-1",
)
PROMETHEUS = Pod("monitoring", "prometheus-0", "10.244.8.10", {"app": "prometheus"}, (), "system-1")
OPERATOR = Pod("flashsale-system", "flashsale-operator-0", "10.244.7.10", {"app": "flashsale-operator"})
SHOP_WEB = Pod(
    "shop", "shop-web-0", "10.244.3.10", {"app": "shop-web"}, (ContainerPort(8080, "http"),), "shop-1"
)


def rendered(ref: SaleRef, mode: str) -> list[dict[str, Any]]:
    return children(ref, parse_spec({**SPEC, "queue": {"mode": mode}}), CONFIG)


def pod_of(ref: SaleRef, mode: str, kind: str, component: str, ip: str) -> Pod:
    """The pod its rendered Deployment (or StatefulSet) makes, on the flashsale node."""
    [workload] = [
        c
        for c in rendered(ref, mode)
        if c["kind"] == kind and c["metadata"]["name"] == f"{ref.name}-{component}"
    ]
    return pod_from_manifest(
        ref.namespace, f"{ref.name}-{component}-0", ip, workload["spec"]["template"], NODE
    )


class World:
    """The cluster with kettle (in `mode`), teapot and another namespace's kettle (both dedicated)."""

    def __init__(self, mode: str) -> None:
        sales = [
            (KETTLE, mode, "10.244.1"),
            (TEAPOT, "dedicated", "10.244.2"),
            (ELSEWHERE, "dedicated", "10.244.4"),
        ]
        policies = [
            {**c, "metadata": {**c["metadata"], "namespace": ref.namespace}}
            for ref, sale_mode, _ in sales
            for c in rendered(ref, sale_mode)
            if c["kind"] == "NetworkPolicy"
        ]
        namespaces = [Namespace(n) for n in (SALES_NS, "other-shop", "shop", "kube-system", "monitoring")]
        namespaces += [Namespace("flashsale-system"), Namespace("middleware")]
        self.cluster = Cluster(namespaces, policies)
        self.gateway = pod_of(KETTLE, mode, "Deployment", "gateway", "10.244.1.10")
        self.consumer = pod_of(KETTLE, mode, "Deployment", "consumer", "10.244.1.11")
        self.broker = (
            pod_of(KETTLE, mode, "StatefulSet", "kafka", "10.244.1.12") if mode == "dedicated" else None
        )
        self.teapot_broker = pod_of(TEAPOT, "dedicated", "StatefulSet", "kafka", "10.244.2.12")
        self.elsewhere_broker = pod_of(ELSEWHERE, "dedicated", "StatefulSet", "kafka", "10.244.4.12")
        # A pod of the sale that no allow-policy names (a future job): the default deny holds it.
        self.stray = Pod(SALES_NS, "kettle-job", "10.244.1.30", dict(self.gateway.labels) | {
            "app.kubernetes.io/name": "flashsale-job", "app.kubernetes.io/component": "job"
        }, (), NODE)  # fmt: skip

    def allowed(self, source: Any, destination: Any, port: int, protocol: Any = "TCP") -> bool:
        return self.cluster.allowed(source, destination, port, protocol)


@pytest.fixture(scope="module", params=["shared", "dedicated"])
def world(request: pytest.FixtureRequest) -> World:
    return World(request.param)


def test_the_gateway_reaches_redis_kafka_postgresql_and_dns(world: World) -> None:
    gateway = world.gateway
    assert world.allowed(gateway, REDIS, 6379)
    assert world.allowed(gateway, POSTGRES, 5432)  # the order view and the payment (c69ee20: refused)
    assert world.allowed(gateway, COREDNS, 53, "UDP")
    assert world.allowed(gateway, COREDNS, 53, "TCP")
    if world.broker is None:
        assert world.allowed(gateway, KAFKA_POD, 9092)
        assert world.allowed(gateway, KAFKA_BY_ADDRESS, 9093)
    else:
        assert world.allowed(gateway, world.broker, 9092)
        assert not world.allowed(gateway, KAFKA_POD, 9092)  # no longer the platform's Kafka
        assert not world.allowed(gateway, KAFKA_BY_ADDRESS, 9093)


def test_the_consumer_reaches_kafka_redis_postgresql_and_dns(world: World) -> None:
    consumer = world.consumer
    assert world.allowed(consumer, REDIS, 6379)
    assert world.allowed(consumer, POSTGRES, 5432)
    assert world.allowed(consumer, COREDNS, 53, "UDP")
    assert world.allowed(consumer, COREDNS, 53, "TCP")
    if world.broker is None:
        assert world.allowed(consumer, KAFKA_POD, 9092)
        assert world.allowed(consumer, KAFKA_BY_ADDRESS, 9093)
    else:
        assert world.allowed(consumer, world.broker, 9092)


def test_the_edge_reaches_the_public_port_and_prometheus_and_the_kubelet_the_admin_ports(
    world: World,
) -> None:
    for edge in (INTERNET, OTHER_NODE):  # the load balancer: an internet address, or a node's (SNAT)
        assert world.allowed(edge, world.gateway, 8080)
        assert not world.allowed(edge, world.gateway, 9090)
    assert world.allowed(PROMETHEUS, world.gateway, 9090)
    assert world.allowed(PROMETHEUS, world.consumer, 9090)
    assert world.allowed(OWN_NODE, world.gateway, 9090)  # the kubelet's probes: their own node
    assert world.allowed(OWN_NODE, world.consumer, 9090)
    assert not world.allowed(OTHER_NODE, world.consumer, 9090)


def test_the_dedicated_broker_takes_its_sale_and_the_operator_only() -> None:
    world = World("dedicated")
    broker = world.broker
    assert broker is not None
    for client in (world.gateway, world.consumer, OPERATOR):
        assert world.allowed(client, broker, 9092)
        assert not world.allowed(client, broker, 9093)  # the controller port: itself only
    for stranger in (SHOP_WEB, PROMETHEUS, world.teapot_broker, world.stray, INTERNET):
        assert not world.allowed(stranger, broker, 9092)
    assert world.allowed(broker, COREDNS, 53, "UDP")
    assert not world.allowed(broker, REDIS, 6379)


def test_nothing_else_gets_through(world: World) -> None:
    gateway, consumer = world.gateway, world.consumer
    for sale_pod in (gateway, consumer):
        assert not world.allowed(SHOP_WEB, sale_pod, 9090)  # a shop pod, the admin/metrics port
        assert not world.allowed(sale_pod, API_SERVICE, 443)  # the API server, by its Service
        assert not world.allowed(sale_pod, API_SERVER, 6443)  # and by its own address
        assert not world.allowed(sale_pod, world.teapot_broker, 9092)  # another sale's broker
        assert not world.allowed(sale_pod, world.elsewhere_broker, 9092)  # another namespace's
        assert not world.allowed(sale_pod, INTERNET, 443)
        assert not world.allowed(sale_pod, Host("8.8.8.8"), 53, "UDP")  # DNS: kube-system only
        assert not world.allowed(sale_pod, REDIS, 6380)
        assert not world.allowed(sale_pod, SHOP_WEB, 8080)  # the shop itself
    assert not world.allowed(gateway, consumer, 9090)
    assert not world.allowed(consumer, gateway, 9090)
    assert not world.allowed(SHOP_WEB, consumer, 8080)
    assert not world.allowed(world.stray, REDIS, 6379)  # the default deny: a pod no policy allows
    assert not world.allowed(world.stray, COREDNS, 53, "UDP")
    assert not world.allowed(INTERNET, world.stray, 8080)
