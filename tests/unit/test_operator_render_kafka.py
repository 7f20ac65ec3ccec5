"""`spec.queue.mode: dedicated`: the sale's own broker (headless Service + StatefulSet), every client of
the queue pointed at it, and NetworkPolicies that let only the sale and the operator reach it.

`UPDATE_GOLDEN=1 pytest tests/unit/test_operator_render_kafka.py` rewrites
tests/unit/golden/operator/dedicated/ (every child of a dedicated sale); review the diff like code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import pytest

from flashsale_dev.golden import assert_matches_golden, golden_name
from flashsale_dev.kafka_image import broker_properties, format_argv, jvm_options, property_name
from flashsale_operator import queue
from flashsale_operator.config import OperatorConfig
from flashsale_operator.render import SaleRef, children, labels, owner_reference, sale_secret, scaled_object
from flashsale_operator.render_kafka import (
    DATA_MOUNT,
    LOG_DIR,
    broker_env,
    broker_service,
    broker_statefulset,
    cluster_id,
    env_name,
)
from flashsale_operator.render_network import DNS_RULE
from flashsale_operator.spec import FlashSaleSpec, parse_spec
from flashsale_sale import __version__

pytestmark = pytest.mark.unit

REF: Final = SaleRef(name="kettle", namespace="shop-sales", uid="6f1c2a9e-0b7d-4c1e-9a53-2d8e4f7b1c30")
ORDER_PATH_KEY: Final = "kettle-order-path-key-0123456789abcdef"
SPEC: Final[dict[str, Any]] = {
    "product": {"sku": "KETTLE-1", "name": "Copper kettle", "price": "49.00", "currency": "EUR"},
    "stock": 100,
    "perUserLimit": 1,
    "schedule": {"startsAt": "2030-11-11T11:11:00Z", "endsAt": "2030-11-11T12:11:00Z"},
    "paymentTimeoutSeconds": 900,
    "gateway": {"replicas": 3},
    "consumers": {"minReplicas": 2, "maxReplicas": 6, "lagThreshold": 500},
}


def config(**overrides: Any) -> OperatorConfig:
    values: dict[str, Any] = {
        "redis_url": "redis://10.0.0.5:6379/0",
        "kafka_bootstrap_servers": "kafka-0.kafka.middleware.svc:9092,10.0.0.7:9093",
        "database_url": "postgresql://flashsale:hunter2@10.0.0.9:5432/flashsale",
        "user_token_key": "platform-user-token-key-0123456789",
        "payment_key": "platform-payment-key-0123456789",
        "gateway_database_url": "postgresql://sale_gateway:gw-pass@10.0.0.9:5432/flashsale",
        "consumer_database_url": "postgresql://sale_consumer:co-pass@10.0.0.9:5432/flashsale",
    }
    return OperatorConfig(**{**values, **overrides})


def spec(**overrides: Any) -> FlashSaleSpec:
    return parse_spec({**SPEC, **overrides})


GOLDEN: Final = Path(__file__).parent / "golden" / "operator" / "dedicated"
HOST: Final = "kettle-kafka-0.kettle-kafka.shop-sales.svc.cluster.local"


def dedicated(**overrides: Any) -> FlashSaleSpec:
    return spec(queue={"partitions": 6, "mode": "dedicated"}, **overrides)


def every_child() -> list[dict[str, Any]]:
    return [sale_secret(REF, config(), order_path_key=ORDER_PATH_KEY), *children(REF, dedicated(), config())]


def by_name(rendered: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["kind"], c["metadata"]["name"]): c for c in rendered}


def env_values(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value") or e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}


@pytest.mark.parametrize("child", every_child(), ids=golden_name)
def test_every_child_of_a_dedicated_sale_matches_its_golden_file(child: dict[str, Any]) -> None:
    assert_matches_golden(child, GOLDEN)


def test_no_dedicated_golden_file_is_left_over() -> None:
    assert {p.name for p in GOLDEN.glob("*.yaml")} == {golden_name(c) for c in every_child()}


def test_the_broker_comes_after_the_policies_and_before_every_other_pod() -> None:
    assert [(c["kind"], c["metadata"]["name"]) for c in every_child()] == [
        ("Secret", "kettle-secrets"),
        ("NetworkPolicy", "kettle-default-deny"),
        ("NetworkPolicy", "kettle-allow-gateway"),
        ("NetworkPolicy", "kettle-allow-consumer"),
        ("NetworkPolicy", "kettle-allow-kafka"),
        ("Service", "kettle-kafka"),
        ("StatefulSet", "kettle-kafka"),
        ("PodDisruptionBudget", "kettle-gateway"),
        ("Service", "kettle-gateway"),
        ("Deployment", "kettle-consumer"),
        ("Deployment", "kettle-gateway"),
    ]
    for child in every_child():
        assert child["metadata"]["ownerReferences"] == [owner_reference(REF)]
    shared = [(c["kind"], c["metadata"]["name"]) for c in children(REF, spec(), config())]
    assert ("StatefulSet", "kettle-kafka") not in shared
    assert ("NetworkPolicy", "kettle-allow-kafka") not in shared


def test_the_headless_service_names_the_broker_pod_even_before_it_is_ready() -> None:
    service = broker_service(REF)
    assert service["metadata"]["name"] == queue.broker_service(REF) == "kettle-kafka"
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"].items() <= labels(REF, "kafka").items()
    ports = [(p["name"], p["port"]) for p in service["spec"]["ports"]]
    assert ports == [("kafka", 9092), ("controller", 9093)]
    assert queue.broker_host(REF) == HOST


def test_the_statefulset_is_one_broker_on_the_pool_with_its_data_on_a_claim_deleted_with_the_sale() -> None:
    statefulset = broker_statefulset(REF, dedicated(), config())
    body = statefulset["spec"]
    assert (body["replicas"], body["serviceName"]) == (1, "kettle-kafka")
    assert body["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Delete", "whenScaled": "Retain"}
    (claim,) = body["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert "storageClassName" not in claim["spec"]  # the cluster's default class
    assert claim["spec"]["resources"] == {"requests": {"storage": "1Gi"}}
    pod = body["template"]["spec"]
    assert body["selector"]["matchLabels"].items() <= body["template"]["metadata"]["labels"].items()
    assert body["template"]["metadata"]["labels"] == labels(REF, "kafka")
    assert pod["nodeSelector"] == {"pool": "flashsale"}
    assert pod["tolerations"][0]["value"] == "flashsale"
    assert pod["priorityClassName"] == "flashsale-sale"
    assert pod["automountServiceAccountToken"] is False
    assert pod["terminationGracePeriodSeconds"] == 30
    (container,) = pod["containers"]
    assert container["image"] == f"flashsale/kafka:{__version__}"
    assert {"name": "data", "mountPath": DATA_MOUNT} in container["volumeMounts"]
    assert container["readinessProbe"]["tcpSocket"] == {"port": "kafka"}
    assert container["livenessProbe"]["tcpSocket"] == {"port": "kafka"}
    assert container["resources"]["limits"]["memory"]
    vip = dedicated(isolation={"nodeSelector": {"pool": "vip"}, "priorityClassName": "vip"})
    vip_pod = broker_statefulset(REF, vip, config())["spec"]["template"]["spec"]
    assert (vip_pod["nodeSelector"], vip_pod["priorityClassName"]) == ({"pool": "vip"}, "vip")
    assert (
        broker_statefulset(REF, dedicated(), config(kafka_image="apache/kafka:4.3.1"))["spec"]["template"][
            "spec"
        ]["containers"][0]["image"]
        == "apache/kafka:4.3.1"
    )


def test_the_broker_env_is_the_apache_kafka_image_contract_and_the_local_image_reads_it_back() -> None:
    env = broker_env(REF)
    names = [e["name"] for e in env]
    assert names.index("POD_IP") < names.index("KAFKA_LISTENERS")  # `$(POD_IP)` needs it defined first
    values = env_values({"env": env})
    assert values["CLUSTER_ID"] == cluster_id(REF)
    assert len(cluster_id(REF)) == 22
    assert values["KAFKA_LISTENERS"] == "PLAINTEXT://$(POD_IP):9092,CONTROLLER://$(POD_IP):9093"
    assert values["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{HOST}:9092"
    assert values["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@$(POD_IP):9093"
    assert values["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert values["KAFKA_LOG_DIRS"] == LOG_DIR
    assert LOG_DIR.startswith(DATA_MOUNT + "/")
    # What the image (tests/flashsale_dev/kafka_image.py) makes of it: the properties meant.
    expanded = {k: v.replace("$(POD_IP)", "10.1.2.3") for k, v in values.items()}
    properties = broker_properties(expanded)
    assert properties["offsets.topic.replication.factor"] == "1"
    assert properties["offsets.topic.num.partitions"] == "1"
    assert properties["group.initial.rebalance.delay.ms"] == "0"
    assert properties["auto.create.topics.enable"] == "false"
    assert properties["share.coordinator.state.topic.min.isr"] == "1"
    assert properties["listeners"] == "PLAINTEXT://10.1.2.3:9092,CONTROLLER://10.1.2.3:9093"
    assert "heap.opts" not in properties
    assert "cluster.id" not in properties
    assert jvm_options(expanded).count("-Xmx512m") == 1


@pytest.mark.parametrize("prop", ["log.dirs", "a_b.c", "x-y.z", "listener.name.internal.ssl_key"])
def test_property_names_survive_the_env_round_trip(prop: str) -> None:
    assert property_name(env_name(prop)) == prop


def test_the_storage_format_names_the_cluster_safely_and_stands_alone_only_for_a_dynamic_quorum() -> None:
    properties = Path("s.properties")
    static = format_argv(["java"], properties, "-x", {"controller.quorum.voters": "1@h:9093"})
    assert "--cluster-id=-x" in static
    assert "--standalone" not in static
    dynamic = format_argv(["java"], properties, "id", {"controller.quorum.bootstrap.servers": "h:9093"})
    assert "--standalone" in dynamic


def test_every_client_of_the_queue_uses_the_dedicated_broker() -> None:
    sale = dedicated(consumers={**SPEC["consumers"], "scaler": "keda"})
    rendered = by_name(children(REF, sale, config()))
    for deployment in ("kettle-gateway", "kettle-consumer"):
        (container,) = rendered[("Deployment", deployment)]["spec"]["template"]["spec"]["containers"]
        assert env_values(container)["FLASHSALE_KAFKA_BOOTSTRAP_SERVERS"] == f"{HOST}:9092"
    trigger = scaled_object(REF, sale, config())["spec"]["triggers"][0]["metadata"]
    assert trigger["bootstrapServers"] == f"{HOST}:9092"
    assert queue.bootstrap_servers(REF, sale, config()) == f"{HOST}:9092"
    assert queue.bootstrap_servers(REF, spec(), config()) == config().kafka_bootstrap_servers


def test_gateways_and_consumers_reach_their_broker_and_no_longer_the_platforms_kafka() -> None:
    policies = {c["metadata"]["name"]: c["spec"] for c in every_child() if c["kind"] == "NetworkPolicy"}
    broker_pods = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "flashsale-kafka",
                                                   "app.kubernetes.io/instance": "kettle"}}}  # fmt: skip
    to_broker: dict[str, Any] = {"to": [broker_pods], "ports": [{"protocol": "TCP", "port": 9092}]}
    for name in ("kettle-allow-gateway", "kettle-allow-consumer"):
        egress = policies[name]["egress"]
        assert to_broker in egress
        platform_kafka = [r for r in egress if {"protocol": "TCP", "port": 9093} in r.get("ports", [])]
        assert not platform_kafka  # the platform's 10.0.0.7:9093
        assert not [r for r in egress if r.get("to", [{}])[0].get("ipBlock", {}).get("cidr") == "10.0.0.7/32"]
    broker = policies["kettle-allow-kafka"]
    assert broker["podSelector"] == broker_pods["podSelector"]
    data, controller = broker["ingress"]
    assert data["ports"] == [{"protocol": "TCP", "port": 9092}]
    sources = [peer.get("podSelector", {}).get("matchLabels", {}) for peer in data["from"]]
    names = [s.get("app.kubernetes.io/name") for s in sources[:2]]
    assert names == ["flashsale-gateway", "flashsale-consumer"]
    operator_namespace = {"kubernetes.io/metadata.name": "flashsale-system"}
    assert data["from"][2] == {"namespaceSelector": {"matchLabels": operator_namespace}}
    assert controller == {"from": [broker_pods], "ports": [{"protocol": "TCP", "port": 9093}]}
    assert broker["egress"][0] == DNS_RULE


def test_a_dedicated_sale_in_another_namespace_gets_its_own_names() -> None:
    other = SaleRef("teapot", "other", "0f1c2a9e-0b7d-4c1e-9a53-2d8e4f7b1c30")
    assert queue.broker_host(other) == "teapot-kafka-0.teapot-kafka.other.svc.cluster.local"
    assert cluster_id(other) != cluster_id(REF)
