"""The operator renders every child of a sale as a pure function: golden files, then the promises.

`UPDATE_GOLDEN=1 pytest tests/unit/test_operator_render.py` rewrites tests/unit/golden/operator/;
review the diff like code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flashsale_dev.golden import assert_matches_golden, golden_name
from flashsale_gateway.server import GRACE_SECONDS
from flashsale_operator.config import OperatorConfig
from flashsale_operator.render import (
    CONFIG_HASH_ANNOTATION,
    MAX_SALE_NAME_LENGTH,
    SECRETS_DIR,
    SaleRef,
    children,
    consumer_deployment,
    gateway_deployment,
    gateway_pdb,
    gateway_service,
    labels,
    owner_reference,
    sale_secret,
)
from flashsale_operator.render_workloads import GATEWAY_GRACE_SECONDS
from flashsale_operator.spec import FlashSaleSpec, parse_spec
from flashsale_sale import tokens
from flashsale_sale.contract import consumer_group, topic_name
from flashsale_sale.settings import ConsumerSettings, GatewaySettings

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).parent / "golden" / "operator"
REF = SaleRef(name="kettle", namespace="shop-sales", uid="6f1c2a9e-0b7d-4c1e-9a53-2d8e4f7b1c30")
ORDER_PATH_KEY = "kettle-order-path-key-0123456789abcdef"
SPEC: dict[str, Any] = {
    "product": {
        "sku": "KETTLE-1",
        "name": "Copper kettle",
        "price": "49.00",
        "currency": "EUR",
        "description": "One hundred hand-made kettles, once.",
    },
    "stock": 100,
    "perUserLimit": 1,
    "schedule": {"startsAt": "2030-11-11T19:11:00+08:00", "endsAt": "2030-11-11T12:11:00Z"},
    "paymentTimeoutSeconds": 900,
    "gateway": {"replicas": 3, "admissionRate": 5000, "userRateLimit": {"requests": 3, "perSeconds": 2}},
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
        "gateway_image": "flashsale/gateway:0.1.0",
        "consumer_image": "flashsale/consumer:0.1.0",
        "default_node_selector": {"pool": "flashsale"},
        "default_tolerations": [
            {"key": "dedicated", "operator": "Equal", "value": "flashsale", "effect": "NoSchedule"}
        ],
        "default_priority_class_name": "flashsale-sale",
    }
    return OperatorConfig(**{**values, **overrides})


def spec(**overrides: Any) -> FlashSaleSpec:
    return parse_spec({**SPEC, **overrides})


def every_child() -> list[dict[str, Any]]:
    return [sale_secret(REF, config(), order_path_key=ORDER_PATH_KEY), *children(REF, spec(), config())]


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    return dict(deployment["spec"]["template"]["spec"])


def env_of(deployment: dict[str, Any]) -> dict[str, Any]:
    """name -> value, or -> the downward API's fieldPath."""
    (container,) = pod_spec(deployment)["containers"]
    return {e["name"]: e.get("value") or e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}


@pytest.mark.parametrize("child", every_child(), ids=golden_name)
def test_every_child_matches_its_golden_file(child: dict[str, Any]) -> None:
    assert_matches_golden(child, GOLDEN)


def test_no_golden_file_is_left_over_from_a_child_that_is_gone() -> None:
    assert {p.name for p in GOLDEN.glob("*.yaml")} == {golden_name(c) for c in every_child()}


def test_every_child_is_named_after_the_sale_owned_by_it_and_labelled() -> None:
    rendered = every_child()
    assert [(c["kind"], c["metadata"]["name"]) for c in rendered] == [
        ("Secret", "kettle-secrets"),
        ("NetworkPolicy", "kettle-default-deny"),
        ("NetworkPolicy", "kettle-allow-gateway"),
        ("NetworkPolicy", "kettle-allow-consumer"),
        ("PodDisruptionBudget", "kettle-gateway"),
        ("Service", "kettle-gateway"),
        ("Deployment", "kettle-consumer"),
        ("Deployment", "kettle-gateway"),
    ]
    for child in rendered:
        meta = child["metadata"]
        assert meta["namespace"] == "shop-sales"
        assert meta["ownerReferences"] == [owner_reference(REF)]
        assert meta["labels"]["app.kubernetes.io/instance"] == "kettle"
        assert meta["labels"]["flashsale.dev/sale"] == "kettle"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "flashsale-operator"
    assert owner_reference(REF) == {
        "apiVersion": "flashsale.dev/v1alpha1",
        "kind": "FlashSale",
        "name": "kettle",
        "uid": REF.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_the_longest_service_name_of_the_longest_sale_name_is_a_dns_label() -> None:
    ref = SaleRef("k" * MAX_SALE_NAME_LENGTH, "ns", REF.uid)
    assert len(gateway_service(ref, spec())["metadata"]["name"]) == 63


def test_selectors_pick_their_own_pods_and_only_those() -> None:
    gateway, consumer = gateway_deployment(REF, spec(), config()), consumer_deployment(REF, spec(), config())
    gateway_pods = gateway["spec"]["template"]["metadata"]["labels"]
    consumer_pods = consumer["spec"]["template"]["metadata"]["labels"]
    assert gateway_pods == labels(REF, "gateway")

    def selects(selector: dict[str, str], pod: dict[str, str]) -> bool:
        return selector.items() <= pod.items()

    for selector in (
        gateway["spec"]["selector"]["matchLabels"],
        gateway_service(REF, spec())["spec"]["selector"],
        gateway_pdb(REF, spec())["spec"]["selector"]["matchLabels"],
    ):
        assert selects(selector, gateway_pods)
        assert not selects(selector, consumer_pods)
    assert selects(consumer["spec"]["selector"]["matchLabels"], consumer_pods)
    other_sale = labels(SaleRef("teapot", "shop-sales", "x"), "gateway")
    assert not selects(gateway["spec"]["selector"]["matchLabels"], other_sale)


@pytest.mark.parametrize(
    ("isolation", "expected"),
    [
        ({}, ({"pool": "flashsale"}, "dedicated", "flashsale-sale")),
        ({"nodeSelector": {"pool": "vip"}}, ({"pool": "vip"}, "dedicated", "flashsale-sale")),
        (
            {"tolerations": [{"key": "vip", "operator": "Exists"}], "priorityClassName": "vip"},
            ({"pool": "flashsale"}, "vip", "vip"),
        ),
        ({"nodeSelector": {}, "tolerations": []}, ({"pool": "flashsale"}, "dedicated", "flashsale-sale")),
    ],
    ids=["nothing", "node-selector-only", "tolerations-and-priority", "empty-falls-back"],
)
def test_isolation_falls_back_to_the_platform_default_field_by_field(
    isolation: dict[str, Any], expected: tuple[dict[str, str], str, str]
) -> None:
    for deployment in (
        gateway_deployment(REF, spec(isolation=isolation), config()),
        consumer_deployment(REF, spec(isolation=isolation), config()),
    ):
        pod = pod_spec(deployment)
        assert (pod["nodeSelector"], pod["tolerations"][0]["key"], pod["priorityClassName"]) == expected


def test_rendering_never_hands_out_the_platform_defaults_themselves() -> None:
    shared = config()
    pod_spec(gateway_deployment(REF, spec(), shared))["tolerations"].append({"key": "mutated"})
    pod_spec(gateway_deployment(REF, spec(), shared))["nodeSelector"]["pool"] = "shop"
    assert pod_spec(consumer_deployment(REF, spec(), shared))["nodeSelector"] == {"pool": "flashsale"}
    assert len(shared.default_tolerations) == 1


def test_admission_rate_is_rendered_only_when_the_sale_sets_it() -> None:
    assert env_of(gateway_deployment(REF, spec(), config()))["FLASHSALE_ADMISSION_RATE"] == "5000.0"
    unset = spec(gateway={"replicas": 2})
    assert "FLASHSALE_ADMISSION_RATE" not in env_of(gateway_deployment(REF, unset, config()))


def config_hash(sale: FlashSaleSpec, platform: OperatorConfig) -> str:
    deployment = gateway_deployment(REF, sale, platform)
    return str(deployment["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION])


def test_the_config_hash_follows_the_shared_secret_and_the_env_but_not_the_replicas() -> None:
    base = config_hash(spec(), config())
    assert base == config_hash(spec(), config())
    new_url = "postgresql://sale_gateway:new@10.0.0.9/flashsale"
    assert config_hash(spec(), config(gateway_database_url=new_url)) != base
    assert config_hash(spec(), config(consumer_database_url=new_url)) != base
    assert config_hash(spec(), config(user_token_key="platform-user-token-key-rotated-42")) != base
    assert config_hash(spec(), config(payment_key="platform-payment-key-rotated-42")) != base
    assert config_hash(spec(paymentTimeoutSeconds=60), config()) != base
    assert config_hash(spec(gateway={**SPEC["gateway"], "replicas": 9}), config()) == base
    assert "hunter2" not in base


def mounted_files(deployment: dict[str, Any], secret: dict[str, Any], directory: Path) -> Path:
    """The files the kubelet would project from the Secret into the deployment's container."""
    (volume,) = [v for v in pod_spec(deployment)["volumes"] if "secret" in v]
    directory.mkdir()
    for item in volume["secret"]["items"]:
        (directory / item["path"]).write_text(secret["stringData"][item["key"]])
    return directory


def test_the_rendered_env_and_secret_are_exactly_what_the_processes_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = sale_secret(REF, config(), order_path_key=ORDER_PATH_KEY)
    loaded: dict[str, Any] = {}
    for deployment, kind, database_url in (
        (gateway_deployment(REF, spec(), config()), GatewaySettings, config().gateway_database_url),
        (consumer_deployment(REF, spec(), config()), ConsumerSettings, config().consumer_database_url),
    ):
        files = mounted_files(deployment, secret, tmp_path / kind.__name__)
        env = env_of(deployment)
        assert env["FLASHSALE_SECRETS_DIR"] == SECRETS_DIR
        assert env["FLASHSALE_BIND_HOST"] == env["POD_IP"] == "status.podIP"
        unknown = {n for n in env if n.startswith("FLASHSALE_")} - {"FLASHSALE_SECRETS_DIR"}
        unknown -= {f"FLASHSALE_{field.upper()}" for field in kind.model_fields}
        assert not unknown, f"{kind.__name__} has no such setting"
        with monkeypatch.context() as patched:
            for name, value in env.items():
                patched.setenv(name, "10.1.2.3" if value == "status.podIP" else value)
            settings = kind(_secrets_dir=files)  # type: ignore[call-arg]
        assert (settings.sale_name, settings.sale_id, settings.stock) == ("kettle", REF.uid, 100)
        assert settings.starts_at == spec().starts_at
        assert settings.topic == topic_name(REF.uid)
        assert settings.database_url.get_secret_value() == database_url.get_secret_value()
        assert settings.bind_host == "10.1.2.3"
        loaded[kind.__name__] = settings
    gateway = loaded["GatewaySettings"]
    assert gateway.order_path_key.get_secret_value() == ORDER_PATH_KEY
    platform_key = config().user_token_key.get_secret_value().encode()
    assert gateway.sale_token_key.get_secret_value() == tokens.sale_token_key(
        platform_key, "shop-sales/kettle"
    )
    assert (gateway.user_rate_requests, gateway.user_rate_seconds, gateway.admission_rate) == (3, 2.0, 5000.0)
    assert str(gateway.product_price) == "49.00"
    assert loaded["ConsumerSettings"].group == consumer_group(REF.uid)


def test_the_sale_key_is_in_the_secret_only_when_given() -> None:
    created = sale_secret(REF, config(), order_path_key=ORDER_PATH_KEY)["stringData"]
    shared = sale_secret(REF, config(), order_path_key=None)["stringData"]
    assert created == {**shared, "FLASHSALE_ORDER_PATH_KEY": ORDER_PATH_KEY}
    assert set(shared) == {
        "FLASHSALE_SALE_TOKEN_KEY",
        "FLASHSALE_SALE_PAYMENT_KEY",
        "FLASHSALE_GATEWAY_DATABASE_URL",
        "FLASHSALE_CONSUMER_DATABASE_URL",
    }


def test_the_sale_secret_holds_only_the_sale_s_derived_keys_never_the_platform_s() -> None:
    platform = config()
    secret = sale_secret(REF, platform, order_path_key=ORDER_PATH_KEY)
    values = set(secret["stringData"].values())
    for platform_secret in (platform.user_token_key, platform.payment_key, platform.database_url):
        assert platform_secret.get_secret_value() not in values
    user_key = secret["stringData"]["FLASHSALE_SALE_TOKEN_KEY"].encode()
    payment_key = secret["stringData"]["FLASHSALE_SALE_PAYMENT_KEY"].encode()
    # What the shop mints for this sale verifies with it; what it mints for another sale does not.
    platform_user_key = platform.user_token_key.get_secret_value().encode()
    own = tokens.mint(tokens.sale_token_key(platform_user_key, "shop-sales/kettle").encode(), "alice")
    other = tokens.mint(tokens.sale_token_key(platform_user_key, "shop-sales/teapot").encode(), "alice")
    assert tokens.verify(user_key, own) == "alice"
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(user_key, other)
    platform_payment_key = platform.payment_key.get_secret_value().encode()
    credential = tokens.mint_payment(
        tokens.sale_payment_key(platform_payment_key, "shop-sales/kettle").encode(), "shop-sales/kettle"
    )
    assert tokens.verify_payment(payment_key, credential) == "shop-sales/kettle"
    assert payment_key != user_key


def test_a_refresh_removes_what_earlier_versions_put_in_the_secret() -> None:
    refresh = sale_secret(REF, config(), order_path_key=None)
    assert refresh["data"] == {"FLASHSALE_USER_TOKEN_KEY": None, "FLASHSALE_DATABASE_URL": None}
    assert "data" not in sale_secret(REF, config(), order_path_key=ORDER_PATH_KEY)


def test_each_container_mounts_only_its_own_entries_of_the_sale_secret() -> None:
    gateway = pod_spec(gateway_deployment(REF, spec(), config()))["volumes"][0]["secret"]["items"]
    consumer = pod_spec(consumer_deployment(REF, spec(), config()))["volumes"][0]["secret"]["items"]
    assert {item["key"]: item["path"] for item in gateway} == {
        "FLASHSALE_SALE_TOKEN_KEY": "FLASHSALE_SALE_TOKEN_KEY",
        "FLASHSALE_SALE_PAYMENT_KEY": "FLASHSALE_SALE_PAYMENT_KEY",
        "FLASHSALE_ORDER_PATH_KEY": "FLASHSALE_ORDER_PATH_KEY",
        "FLASHSALE_GATEWAY_DATABASE_URL": "FLASHSALE_DATABASE_URL",
    }
    assert consumer == [{"key": "FLASHSALE_CONSUMER_DATABASE_URL", "path": "FLASHSALE_DATABASE_URL"}]


def test_pods_mount_the_sale_secret_read_only_and_never_get_an_api_token() -> None:
    for deployment in (gateway_deployment(REF, spec(), config()), consumer_deployment(REF, spec(), config())):
        pod = pod_spec(deployment)
        assert pod["automountServiceAccountToken"] is False
        (volume,) = [v for v in pod["volumes"] if "secret" in v]
        assert {k: v for k, v in volume["secret"].items() if k != "items"} == {
            "secretName": "kettle-secrets",
            "defaultMode": 0o400,
        }
        (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
        assert (mount["mountPath"], mount["readOnly"]) == (SECRETS_DIR, True)


def test_probes_and_scrapes_reach_named_ports_and_rollouts_never_drop_a_pod() -> None:
    """Probes and scrapes use the admin port (the gateway's public port answers 404 for them)."""
    for deployment, ports, port, ready_path in (
        (
            gateway_deployment(REF, spec(), config()),
            [("http", 8080), ("admin", 9090)],
            ("admin", 9090),
            "/readyz",
        ),
        (consumer_deployment(REF, spec(), config()), [("metrics", 9090)], ("metrics", 9090), "/healthz"),
    ):
        (container,) = pod_spec(deployment)["containers"]
        assert [(p["name"], p["containerPort"]) for p in container["ports"]] == ports
        assert container["readinessProbe"]["httpGet"] == {"path": ready_path, "port": port[0]}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port[0]}
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(port[1])
        assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}


def test_the_gateway_gets_longer_than_its_own_graceful_shutdown() -> None:
    assert GATEWAY_GRACE_SECONDS == GRACE_SECONDS  # the operator mirrors the gateway's constant
    grace = pod_spec(gateway_deployment(REF, spec(), config()))["terminationGracePeriodSeconds"]
    assert grace > GRACE_SECONDS


def test_replicas_and_resources_come_from_the_spec() -> None:
    resources = {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
    gateway = gateway_deployment(REF, spec(gateway={"replicas": 5, "resources": resources}), config())
    assert gateway["spec"]["replicas"] == 5
    assert pod_spec(gateway)["containers"][0]["resources"] == resources


@pytest.mark.parametrize("scaler", ["builtin", "keda"])
def test_the_consumer_replicas_are_left_to_the_scaler(scaler: str) -> None:
    sale = spec(consumers={**SPEC["consumers"], "scaler": scaler})
    assert "replicas" not in consumer_deployment(REF, sale, config())["spec"]
    rendered = children(REF, sale, config())
    (consumer,) = [
        c for c in rendered if c["metadata"]["name"] == "kettle-consumer" and c["kind"] == "Deployment"
    ]
    assert "replicas" not in consumer["spec"]
    scaled_objects = [c for c in rendered if c["kind"] == "ScaledObject"]
    assert len(scaled_objects) == (1 if scaler == "keda" else 0)  # builtin: the operator's own loop


def test_the_service_is_a_load_balancer_unless_the_sale_says_otherwise() -> None:
    service = gateway_service(REF, spec())["spec"]
    assert service["type"] == "LoadBalancer"
    # The public port only: never the admin port (health, readiness, metrics, OpenAPI).
    assert service["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    env = env_of(gateway_deployment(REF, spec(), config()))
    assert (env["FLASHSALE_PORT"], env["FLASHSALE_ADMIN_PORT"]) == ("8080", "9090")
    assert gateway_service(REF, spec(gateway={"serviceType": "ClusterIP"}))["spec"]["type"] == "ClusterIP"
    assert gateway_pdb(REF, spec())["spec"]["maxUnavailable"] == 1
