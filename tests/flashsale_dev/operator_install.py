"""Installs the FlashSale operator on a local cluster: manifests/ as they are, plus this platform's config.

Only the ConfigMap `flashsale-operator-config` and the Secret `flashsale-operator-secrets` are
generated (this platform's addresses, keys and database logins); everything else is applied from
manifests/ with the built kubectl, exactly as a platform team would. The database is migrated first
as its owner, and the gateway's and consumer's logins created in the roles `flashsale migrate` makes
(database_roles.py). Returns once the CRD is Established and the
operator's pod is Ready (its kopf liveness endpoint answers).

The test platform (the pytest session) installs the operator's test build instead: the same
manifests with the image `flashsale/operator-test` (operator_test_build.py: the real operator plus the
test-only kill points). `make up`, the demo and the benchmarks run the shipped image.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import kubernetes
import yaml

from flashsale_dev.cluster import LocalCluster
from flashsale_dev.database_roles import DatabaseLogins, ensure_database_logins
from flashsale_dev.paths import REPO_ROOT
from flashsale_dev.platform import LocalPlatform
from flashsale_dev.waiting import wait_for
from flashsale_operator.config import DEFAULT_NODE_SELECTOR, DEFAULT_PRIORITY_CLASS, DEFAULT_TOLERATIONS
from flashsale_sale import tokens

MANIFESTS = REPO_ROOT / "manifests"
NAMESPACE = "flashsale-system"
CONFIG_MAP = "flashsale-operator-config"
SECRET = "flashsale-operator-secrets"
DEPLOYMENT = "flashsale-operator"
CRD = "flashsales.flashsale.dev"
OPERATOR_LABEL = "app.kubernetes.io/name=flashsale-operator"
TEST_BUILD_IMAGE = "flashsale/operator-test"


# What tenants' sales may ask for in spec.isolation: exactly the platform's default isolation (the
# operator's own default too, spelled out here as a platform team would).
ISOLATION_ALLOW_LIST = {
    "FLASHSALE_OPERATOR_ALLOWED_NODE_SELECTORS": json.dumps([DEFAULT_NODE_SELECTOR]),
    "FLASHSALE_OPERATOR_ALLOWED_TOLERATIONS": json.dumps(DEFAULT_TOLERATIONS),
    "FLASHSALE_OPERATOR_ALLOWED_PRIORITY_CLASS_NAMES": json.dumps([DEFAULT_PRIORITY_CLASS]),
}


@dataclass(frozen=True)
class InstalledOperator:
    user_token_key: str  # the platform's key the shop's login service derives each sale's key from
    payment_key: str  # the platform's key the shop's payment service derives each sale's key from

    def exports(self) -> dict[str, str]:
        return {"FLASHSALE_USER_TOKEN_KEY": self.user_token_key, "FLASHSALE_PAYMENT_KEY": self.payment_key}

    def sale_key(self, namespace: str, name: str) -> str:
        """The user-token key of the FlashSale `namespace/name`: what its gateway verifies with."""
        return tokens.sale_token_key(self.user_token_key.encode(), f"{namespace}/{name}")

    def payment_credential(self, namespace: str, name: str) -> str:
        """What the shop's payment service presents to pay that sale's orders."""
        sale = f"{namespace}/{name}"
        return tokens.mint_payment(tokens.sale_payment_key(self.payment_key.encode(), sale).encode(), sale)


def platform_config(
    platform: LocalPlatform, user_token_key: str, payment_key: str, settings: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """The two generated objects for the local platform's middleware, keys and database logins."""
    return operator_configuration(
        redis_url=platform.redis.url(),
        kafka_bootstrap_servers=platform.kafka.bootstrap_servers,
        owner_database_url=platform.postgres.url(),
        logins=ensure_database_logins(platform.postgres),
        user_token_key=user_token_key,
        payment_key=payment_key,
        settings=settings,
    )


def operator_configuration(
    *,
    redis_url: str,
    kafka_bootstrap_servers: str,
    owner_database_url: str,
    logins: DatabaseLogins,
    user_token_key: str,
    payment_key: str,
    settings: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The two generated objects: where a platform's middleware is, its keys and database logins."""
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIG_MAP, "namespace": NAMESPACE},
        "data": {
            "FLASHSALE_OPERATOR_REDIS_URL": redis_url,
            "FLASHSALE_OPERATOR_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
            **ISOLATION_ALLOW_LIST,
            **(settings or {}),
        },
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET, "namespace": NAMESPACE},
        "stringData": {
            "FLASHSALE_OPERATOR_DATABASE_URL": owner_database_url,  # the owner: migrate, prewarm
            "FLASHSALE_OPERATOR_GATEWAY_DATABASE_URL": logins.gateway_url,
            "FLASHSALE_OPERATOR_CONSUMER_DATABASE_URL": logins.consumer_url,
            "FLASHSALE_OPERATOR_USER_TOKEN_KEY": user_token_key,
            "FLASHSALE_OPERATOR_PAYMENT_KEY": payment_key,
        },
    }
    return [config, secret]


def install_operator(
    cluster: LocalCluster,
    platform: LocalPlatform,
    *,
    user_token_key: str | None = None,
    test_build: bool = False,
    settings: Mapping[str, str] | None = None,
    timeout: float = 180,
) -> InstalledOperator:
    """`settings`: more of the operator's ConfigMap (`FLASHSALE_OPERATOR_*`), beside the platform's."""
    key = user_token_key or new_user_token_key()
    payment_key = new_payment_key()
    with cluster.api_client() as api:
        apply_operator(
            cluster.kubectl,
            api,
            lambda: platform_config(platform, key, payment_key, settings),
            operator_manifests_for_tests() if test_build else manifest_documents("operator.yaml"),
            timeout=timeout,
        )
    return InstalledOperator(key, payment_key)


def new_user_token_key() -> str:
    return f"platform-user-token-key-{secrets.token_hex(16)}"


def new_payment_key() -> str:
    return f"platform-payment-key-{secrets.token_hex(16)}"


def apply_operator(
    kubectl: Callable[..., str],
    api: kubernetes.client.ApiClient,
    generate: Callable[[], list[dict[str, Any]]],
    operator: list[dict[str, Any]],
    *,
    timeout: float = 180,
) -> None:
    """Applies manifests/ (the operator's own documents given as `operator`) and the generated
    configuration on any cluster (`kubectl(*args, input_text=...)`), and waits for the CRD
    Established and the operator's pod Ready. `generate` runs once the namespace exists."""
    apply = ("apply", "--server-side", "--force-conflicts", "--field-manager=flashsale-install", "-f")
    kubectl(*apply, str(MANIFESTS / "namespace.yaml"))
    kubectl(*apply, "-", input_text=json.dumps({"apiVersion": "v1", "kind": "List", "items": generate()}))
    for name in ("crd.yaml", "rbac.yaml"):
        kubectl(*apply, str(MANIFESTS / name))
    kubectl(*apply, "-", input_text=json.dumps({"apiVersion": "v1", "kind": "List", "items": operator}))
    wait_for(lambda: _established(api), timeout=timeout, what=f"CRD {CRD} Established")
    wait_for(
        lambda: _operator_ready(api),
        timeout=timeout,
        what="the operator's pod Ready",
        describe=lambda: kubectl("get", "pods", "-n", NAMESPACE, "-o", "wide", check=False),
    )


def operator_manifests_for_tests() -> list[dict[str, Any]]:
    """manifests/operator.yaml with the operator's image swapped for its test build (same tag)."""
    docs = manifest_documents("operator.yaml")
    for doc in docs:
        if doc["kind"] == "Deployment":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                _, _, tag = container["image"].rpartition(":")
                container["image"] = f"{TEST_BUILD_IMAGE}:{tag}"
    return docs


def operator_pods(core: kubernetes.client.CoreV1Api) -> list[Any]:
    """The operator's pods that are not being deleted."""
    pods = core.list_namespaced_pod(NAMESPACE, label_selector=OPERATOR_LABEL).items
    return [p for p in pods if p.metadata.deletion_timestamp is None]


def operator_metrics(core: kubernetes.client.CoreV1Api) -> str:
    """The operator's Prometheus metrics, from its pod's own address."""
    (pod,) = operator_pods(core)
    return httpx.get(f"http://{pod.status.pod_ip}:9090/metrics", timeout=10).text


def restart_operator(cluster: LocalCluster, timeout: float = 180) -> None:
    """Deletes the operator's pod (a drain, a crash) and waits for its replacement to be Ready."""
    with cluster.api_client() as api:
        core = kubernetes.client.CoreV1Api(api)
        old = {p.metadata.name for p in operator_pods(core)}
        for name in old:
            cluster.kubectl("delete", "pod", name, "-n", NAMESPACE, "--wait=true", "--timeout=120s")
        wait_for(
            lambda: any(p.metadata.name not in old and _ready(p) for p in operator_pods(core)),
            timeout=timeout,
            what="a new operator pod Ready",
        )


def set_operator_env(cluster: LocalCluster, values: dict[str, str | None]) -> None:
    """Changes the operator's ConfigMap (None removes a key) and restarts it to read it."""
    changes = json.dumps({"data": values})
    cluster.kubectl("patch", "configmap", CONFIG_MAP, "-n", NAMESPACE, "--type=merge", "-p", changes)
    restart_operator(cluster)


def uninstall_operator(cluster: LocalCluster) -> None:
    """Removes the operator (not the CRD, whose deletion would delete every FlashSale)."""
    for name in ("operator.yaml", "rbac.yaml"):
        cluster.kubectl(
            "delete", "--ignore-not-found", "--wait=true", "-f", str(MANIFESTS / name), check=False
        )


def manifest_documents(name: str) -> list[dict[str, Any]]:
    with (MANIFESTS / name).open() as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc]


def _established(api: kubernetes.client.ApiClient) -> bool:
    crd = kubernetes.client.ApiextensionsV1Api(api).read_custom_resource_definition(CRD)
    return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])


def _operator_ready(api: kubernetes.client.ApiClient) -> bool:
    pods = kubernetes.client.CoreV1Api(api).list_namespaced_pod(NAMESPACE, label_selector=OPERATOR_LABEL)
    return any(pod.metadata.deletion_timestamp is None and _ready(pod) for pod in pods.items)


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
