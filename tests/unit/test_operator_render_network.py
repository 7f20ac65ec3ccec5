"""The sale's NetworkPolicies: deny by default; each pod reaches DNS and exactly its middleware."""

from __future__ import annotations

from typing import Any

import pytest

from flashsale_operator.config import OperatorConfig
from flashsale_operator.render import SaleRef, labels, network_policies
from flashsale_operator.render_network import (
    DNS_RULE,
    Endpoint,
    egress_rule,
    kafka_endpoints,
    postgres_endpoints,
    redis_endpoints,
    service_namespace,
)

pytestmark = pytest.mark.unit

REF = SaleRef(name="kettle", namespace="shop-sales", uid="6f1c2a9e-0b7d-4c1e-9a53-2d8e4f7b1c30")


def config(redis: str, kafka: str, database: str) -> OperatorConfig:
    return OperatorConfig(
        redis_url=redis,
        kafka_bootstrap_servers=kafka,
        database_url=database,  # type: ignore[arg-type]
        user_token_key="platform-user-token-key-0123456789",  # type: ignore[arg-type]
        payment_key="platform-payment-key-0123456789",  # type: ignore[arg-type]
        gateway_database_url=database,  # type: ignore[arg-type]
        consumer_database_url=database,  # type: ignore[arg-type]
    )


PLATFORM = config(
    "redis://:pw@10.0.0.5:6379/0",
    "kafka-0.kafka.middleware.svc:9092,10.0.0.7:9093",
    "postgresql://flashsale:hunter2@10.0.0.9:5433/flashsale",
)


def policies() -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p["spec"] for p in network_policies(REF, PLATFORM)}


def peer_name(peer: dict[str, Any]) -> str:
    if "ipBlock" in peer:
        return str(peer["ipBlock"]["cidr"])
    return "namespace " + str(peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"])


def destinations(egress: list[dict[str, Any]]) -> set[tuple[str, str, int]]:
    """(cidr, "namespace <name>" or "any", protocol, port) for every egress rule but DNS."""
    found = set()
    for rule in egress:
        if rule == DNS_RULE:
            continue
        cidrs = [peer_name(peer) for peer in rule.get("to", [])] or ["any"]
        found |= {(cidr, p["protocol"], p["port"]) for cidr in cidrs for p in rule["ports"]}
    return found


def test_every_sale_pod_is_denied_everything_unless_an_allow_policy_says_otherwise() -> None:
    deny = policies()["kettle-default-deny"]
    assert deny == {
        "podSelector": {
            "matchLabels": {"app.kubernetes.io/instance": "kettle", "app.kubernetes.io/part-of": "flashsale"}
        },
        "policyTypes": ["Ingress", "Egress"],
    }
    for component in ("gateway", "consumer", "some-future-job"):
        assert deny["podSelector"]["matchLabels"].items() <= labels(REF, component).items()


def test_only_the_gateway_takes_traffic_and_only_the_scrapers_reach_the_admin_ports() -> None:
    found = policies()
    gateway, consumer = found["kettle-allow-gateway"], found["kettle-allow-consumer"]
    assert gateway["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "flashsale-gateway"
    assert consumer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "flashsale-consumer"
    monitoring = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    scrapes = {"from": monitoring, "ports": [{"protocol": "TCP", "port": 9090}]}
    assert gateway["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8080}]}, scrapes]
    assert consumer["ingress"] == [scrapes]
    assert all(p["policyTypes"] == ["Ingress", "Egress"] for p in found.values())


def test_each_pod_reaches_dns_and_exactly_its_middleware() -> None:
    found = policies()
    redis = {("10.0.0.5/32", "TCP", 6379)}
    kafka = {
        ("namespace middleware", "TCP", 9092),
        ("10.0.0.7/32", "TCP", 9093),
    }  # kafka-0.kafka.middleware.svc
    postgres = {("10.0.0.9/32", "TCP", 5433)}
    gateway, consumer = found["kettle-allow-gateway"]["egress"], found["kettle-allow-consumer"]["egress"]
    assert destinations(gateway) == redis | kafka | postgres  # the order view and the payment
    assert destinations(consumer) == redis | kafka | postgres
    for egress in (gateway, consumer):
        assert egress[0] == DNS_RULE  # kube-system only, port 53, UDP and TCP
        assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}} in (
            egress[0]["to"]
        )


def test_middleware_named_twice_gives_one_rule() -> None:
    same = config("redis://10.0.0.5:6379", "10.0.0.5:6379", "postgresql://u:p@10.0.0.5:6379/db")
    egress = {p["metadata"]["name"]: p["spec"] for p in network_policies(REF, same)}["kettle-allow-consumer"]
    assert len(egress["egress"]) == 2  # DNS and the one address


@pytest.mark.parametrize(
    ("parse", "text", "expected"),
    [
        (redis_endpoints, "redis://redis.middleware.svc/0", [Endpoint("redis.middleware.svc", 6379)]),
        (redis_endpoints, "rediss://user:p%40ss@10.1.1.1:6380", [Endpoint("10.1.1.1", 6380)]),
        (kafka_endpoints, "PLAINTEXT://k1:9094, k2", [Endpoint("k1", 9094), Endpoint("k2", 9092)]),
        (kafka_endpoints, "[fd00::7]:9092", [Endpoint("fd00::7", 9092)]),
        (
            postgres_endpoints,
            "postgresql://u:p@db1:5432,10.2.2.2:6543/orders?sslmode=require",
            [Endpoint("db1", 5432), Endpoint("10.2.2.2", 6543)],
        ),
        (postgres_endpoints, "postgres://db", [Endpoint("db", 5432)]),
    ],
)
def test_middleware_addresses_are_read_from_the_platform_urls(
    parse: Any, text: str, expected: list[Endpoint]
) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("host", "namespace"),
    [
        ("kafka-0.kafka.middleware.svc", "middleware"),  # a pod of a headless Service
        ("redis.data.svc.cluster.local", "data"),
        ("redis.data.svc.cluster.local.", "data"),
        ("redis.data", None),  # could be a public name: never guessed
        ("db.svc.example.com", None),
        ("redis.data.svc.corp.internal", None),  # another cluster domain: the port alone
        ("a.svc", None),
    ],
)
def test_a_cluster_service_name_gives_its_namespace_and_any_other_name_the_port_alone(
    host: str, namespace: str | None
) -> None:
    assert service_namespace(host) == namespace
    rule = egress_rule(Endpoint(host, 6379))
    expected = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}]
    assert rule.get("to") == (expected if namespace else None)
    assert rule["ports"] == [{"protocol": "TCP", "port": 6379}]


def test_an_ipv6_address_is_one_address_and_a_url_without_a_host_is_refused() -> None:
    v6 = config("redis://[fd00::5]:6379", "k:9092", "postgresql://u:p@db/x")
    egress = {p["metadata"]["name"]: p["spec"] for p in network_policies(REF, v6)}["kettle-allow-gateway"]
    assert ("fd00::5/128", "TCP", 6379) in destinations(egress["egress"])
    with pytest.raises(ValueError, match="no host"):
        postgres_endpoints("postgresql:///orders")
