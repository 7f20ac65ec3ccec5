"""The demo's sale as Kubernetes objects (pure functions): what the operator will render, written by hand.

A Secret with the sale's keys and database URL, mounted as files (FLASHSALE_SECRETS_DIR); a gateway
Deployment behind a `LoadBalancer` Service; a consumer Deployment; all on the flashsale pool. The
pods bind their own address from the downward API, as on a real cluster.
"""

from __future__ import annotations

from typing import Any

from flashsale_dev.cluster.nodes import FLASHSALE_PLACEMENT, deployment

SECRETS_DIR = "/var/run/secrets/flashsale"


def secret(name: str, values: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": values}


def _container(name: str, image: str, settings: dict[str, str]) -> dict[str, Any]:
    env: list[dict[str, Any]] = [{"name": key, "value": value} for key, value in settings.items()]
    env += [
        {"name": "FLASHSALE_BIND_HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "FLASHSALE_SECRETS_DIR", "value": SECRETS_DIR},
    ]
    return {
        "name": name,
        "image": image,
        "env": env,
        "volumeMounts": [{"name": "sale-secrets", "mountPath": SECRETS_DIR, "readOnly": True}],
    }


def _with_secret_volume(manifest: dict[str, Any], secret_name: str) -> dict[str, Any]:
    manifest["spec"]["template"]["spec"]["volumes"] = [
        {"name": "sale-secrets", "secret": {"secretName": secret_name}}
    ]
    return manifest


def gateway(sale: str, replicas: int, settings: dict[str, str], secret_name: str) -> dict[str, Any]:
    container = _container("gateway", "flashsale/gateway:demo", {**settings, "FLASHSALE_PORT": "8080"})
    container["ports"] = [{"name": "http", "containerPort": 8080}]
    container["readinessProbe"] = {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1}
    labels = {"app.kubernetes.io/name": "gateway", "app.kubernetes.io/instance": sale}
    manifest = deployment(f"{sale}-gateway", replicas, [container], FLASHSALE_PLACEMENT, labels)
    return _with_secret_volume(manifest, secret_name)


def consumer(sale: str, replicas: int, settings: dict[str, str], secret_name: str) -> dict[str, Any]:
    metrics = {**settings, "FLASHSALE_METRICS_PORT": "9090"}
    container = _container("consumer", "flashsale/consumer:demo", metrics)
    labels = {"app.kubernetes.io/name": "consumer", "app.kubernetes.io/instance": sale}
    manifest = deployment(f"{sale}-consumer", replicas, [container], FLASHSALE_PLACEMENT, labels)
    return _with_secret_volume(manifest, secret_name)


def gateway_service(sale: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{sale}-gateway"},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app.kubernetes.io/name": "gateway", "app.kubernetes.io/instance": sale},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }
