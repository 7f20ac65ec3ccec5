"""The install manifests keep their promises: least privilege, one operator on the system pool."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flashsale_operator.config import DEFAULT_PRIORITY_CLASS
from flashsale_sale import __version__

pytestmark = pytest.mark.unit

MANIFESTS = Path(__file__).parents[2] / "manifests"
READ = {"get", "list", "watch"}


def load(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((MANIFESTS / name).read_text()) if doc]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [doc for doc in docs if doc["kind"] == kind]
    return found


def rules() -> list[dict[str, Any]]:
    return list(one(load("rbac.yaml"), "ClusterRole")["rules"])


def verbs_on(group: str, resource: str) -> set[str]:
    return {
        verb
        for rule in rules()
        if group in rule["apiGroups"] and resource in rule["resources"]
        for verb in rule["verbs"]
    }


def operator() -> dict[str, Any]:
    return one(load("operator.yaml"), "Deployment")


def test_no_rule_uses_a_wildcard_or_names_single_objects() -> None:
    for rule in rules():
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule  # no resourceNames, no URLs
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
            assert all("*" not in item for item in rule[field]), rule
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])


def test_secrets_may_be_written_but_never_read() -> None:
    assert verbs_on("", "secrets") == {"create", "patch"}
    assert not READ & verbs_on("", "secrets")


@pytest.mark.parametrize(
    ("group", "resource", "verbs"),
    [
        ("flashsale.dev", "flashsales", {"get", "list", "watch", "patch"}),
        ("flashsale.dev", "flashsales/status", {"get", "patch", "update"}),
        ("flashsale.dev", "flashsales/finalizers", {"update"}),
        ("", "events", {"create", "patch"}),
        ("events.k8s.io", "events", {"create", "patch"}),
        ("apps", "deployments", {"get", "list", "watch", "create", "patch"}),
        ("keda.sh", "scaledobjects", {"get", "create", "patch"}),
        ("apps", "deployments/scale", {"get", "patch", "update"}),
        ("apps", "statefulsets", {"get", "create", "patch"}),
        ("", "persistentvolumeclaims", set()),
        ("", "services", {"get", "list", "watch", "create", "patch"}),
        ("policy", "poddisruptionbudgets", {"get", "create", "patch"}),
        ("networking.k8s.io", "networkpolicies", {"get", "create", "patch"}),
        ("", "pods", {"list", "watch"}),
        ("apiextensions.k8s.io", "customresourcedefinitions", {"get", "list", "watch"}),
        ("", "configmaps", set()),
        ("", "namespaces", set()),
        ("rbac.authorization.k8s.io", "roles", set()),
        ("kopf.dev", "clusterkopfpeerings", set()),
    ],
)
def test_the_cluster_role_grants_exactly_what_the_operator_does(
    group: str, resource: str, verbs: set[str]
) -> None:
    assert verbs_on(group, resource) == verbs


def test_the_role_is_bound_to_the_operators_service_account_and_used_by_its_deployment() -> None:
    rbac = load("rbac.yaml")
    account = one(rbac, "ServiceAccount")["metadata"]
    binding = one(rbac, "ClusterRoleBinding")
    assert (account["name"], account["namespace"]) == ("flashsale-operator", "flashsale-system")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": one(rbac, "ClusterRole")["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
    ]
    deployment = operator()
    assert deployment["metadata"]["namespace"] == account["namespace"]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["name"]
    assert one(load("namespace.yaml"), "Namespace")["metadata"]["name"] == account["namespace"]


def test_one_operator_runs_on_the_system_pool_and_never_on_the_sales_pool() -> None:
    deployment = operator()
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # never two at once (no peering)
    assert pod["nodeSelector"] == {"pool": "system"}
    assert "tolerations" not in pod  # it cannot land on the tainted flashsale pool
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "flashsale-operator"
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_the_operator_reads_its_configuration_from_the_generated_config_map_and_secret() -> None:
    pod = operator()["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == f"flashsale/operator:{__version__}"
    assert container["envFrom"] == [{"configMapRef": {"name": "flashsale-operator-config"}}]
    env = {e["name"]: e for e in container["env"]}
    assert env["FLASHSALE_OPERATOR_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["FLASHSALE_OPERATOR_BIND_HOST"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    secrets_dir = env["FLASHSALE_OPERATOR_SECRETS_DIR"]["value"]
    (volume,) = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == "flashsale-operator-secrets"
    assert volume["secret"]["defaultMode"] == 0o400
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert (mount["mountPath"], mount["readOnly"]) == (secrets_dir, True)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080, "metrics": 9090}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}


def test_sale_pods_get_a_priority_that_never_preempts_the_shop() -> None:
    (priority,) = [d for d in load("operator.yaml") if d["kind"] == "PriorityClass"]
    assert priority["metadata"]["name"] == DEFAULT_PRIORITY_CLASS  # the operator's default isolation
    assert priority["preemptionPolicy"] == "Never"
    assert priority["globalDefault"] is False
