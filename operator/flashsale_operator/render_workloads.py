"""The sale's workloads: the gateway and consumer Deployments, the gateway's Service and PDB (pure).

Both Deployments roll with maxUnavailable 0 / maxSurge 1: a spec change (limits, endsAt) brings a
new pod up and Ready before an old one gets SIGTERM, whose graceful shutdown finishes its requests
and flushes its producer, so no order is lost while it rolls out.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from flashsale_operator.config import OperatorConfig
from flashsale_operator.render_env import (
    ADMIN_PORT,
    CONFIG_HASH_ANNOTATION,
    GATEWAY_PORT,
    METRICS_PORT,
    SECRETS_DIR,
    config_hash,
    consumer_settings,
    container_env,
    gateway_settings,
    secret_items,
)
from flashsale_operator.render_meta import SaleRef, child_name, labels, metadata, selector
from flashsale_operator.render_security import harden_pod
from flashsale_operator.spec import FlashSaleSpec, Isolation

SERVICE_PORT: Final = 80
# flashsale_gateway.server.GRACE_SECONDS (a unit test keeps them equal; the operator does not import
# the gateway's server), plus a margin for the Kafka flush after granian's workers stopped.
GATEWAY_GRACE_SECONDS: Final = 25
GATEWAY_TERMINATION_GRACE: Final = GATEWAY_GRACE_SECONDS + 5
CONSUMER_TERMINATION_GRACE: Final = 30

# Memory is limited (a leak is killed, not the node); CPU is not: a throttled gateway in the first
# seconds of a sale is worse than one borrowing idle CPU on a node dedicated to sales.
DEFAULT_GATEWAY_RESOURCES: Final = {
    "requests": {"cpu": "500m", "memory": "256Mi"},
    "limits": {"memory": "512Mi"},
}
DEFAULT_CONSUMER_RESOURCES: Final = {
    "requests": {"cpu": "250m", "memory": "256Mi"},
    "limits": {"memory": "512Mi"},
}
_SALE_VOLUME: Final = "sale-secrets"


def placement(isolation: Isolation, config: OperatorConfig) -> dict[str, Any]:
    """The sale's isolation, each field falling back to the platform's default when unset or empty.

    Empty falls back too: an empty node selector would let sale pods land on the shop's nodes.
    """
    chosen = {
        "nodeSelector": isolation.node_selector or config.default_node_selector,
        "tolerations": isolation.tolerations or config.default_tolerations,
        "priorityClassName": isolation.priority_class_name or config.default_priority_class_name,
    }
    return {key: copy.deepcopy(value) for key, value in chosen.items() if value}


def _http_probe(
    path: str, port: str, *, period: int, timeout: int, failures: int, delay: int = 0
) -> dict[str, Any]:
    probe: dict[str, Any] = {"httpGet": {"path": path, "port": port}}
    if delay:
        probe["initialDelaySeconds"] = delay
    probe.update(periodSeconds=period, timeoutSeconds=timeout, failureThreshold=failures, successThreshold=1)
    return probe


# Readiness reacts within seconds (a gateway whose Redis or Kafka is gone leaves the Service); liveness
# is patient (a minute of silence): restarting a gateway busy with a crowd would only add load. Both
# on the admin port: the public port answers 404 for them.
GATEWAY_READINESS: Final = _http_probe("/readyz", "admin", period=2, timeout=2, failures=3)
GATEWAY_LIVENESS: Final = _http_probe("/healthz", "admin", period=10, timeout=5, failures=6, delay=10)
# The consumer's /healthz fails once its loop is stuck (flashsale_consumer.metrics): readiness shows it,
# liveness restarts it.
CONSUMER_READINESS: Final = _http_probe("/healthz", "metrics", period=5, timeout=2, failures=3)
CONSUMER_LIVENESS: Final = _http_probe("/healthz", "metrics", period=10, timeout=5, failures=6, delay=15)


def _container(name: str, image: str, env: list[dict[str, Any]], *ports: tuple[str, int]) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "ports": [{"name": port, "containerPort": number, "protocol": "TCP"} for port, number in ports],
        "env": env,
        "volumeMounts": [{"name": _SALE_VOLUME, "mountPath": SECRETS_DIR, "readOnly": True}],
    }


def _pod_template(
    ref: SaleRef,
    component: str,
    container: dict[str, Any],
    *,
    annotations: dict[str, str],
    isolation: dict[str, Any],
    grace: int,
) -> dict[str, Any]:
    return {
        "metadata": {"labels": labels(ref, component), "annotations": annotations},
        "spec": harden_pod(
            {
                "automountServiceAccountToken": False,  # sale pods never call the API
                # Service links would put `<SVC>_PORT` variables in the env: a Service named `flashsale`
                # in the sale's namespace would set FLASHSALE_PORT.
                "enableServiceLinks": False,
                "terminationGracePeriodSeconds": grace,
                **isolation,
                "topologySpreadConstraints": [
                    {
                        "maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "ScheduleAnyway",  # spread when possible, never stay Pending
                        "labelSelector": {"matchLabels": selector(ref, component)},
                    }
                ],
                "containers": [container],
                "volumes": [
                    {
                        "name": _SALE_VOLUME,
                        # Only this component's entries: the gateway never sees the consumer's
                        # database URL, nor the consumer any key.
                        "secret": {
                            "secretName": child_name(ref, "secrets"),
                            "defaultMode": 0o400,
                            "items": secret_items(component),
                        },
                    }
                ],
            }
        ),
    }


def _annotations(env: list[dict[str, Any]], config: OperatorConfig, port: int) -> dict[str, str]:
    return {
        CONFIG_HASH_ANNOTATION: config_hash(env, config),
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": "/metrics",
    }


def _deployment(
    ref: SaleRef, component: str, replicas: int | None, template: dict[str, Any]
) -> dict[str, Any]:
    spec: dict[str, Any] = {} if replicas is None else {"replicas": replicas}
    spec.update(
        revisionHistoryLimit=3,
        selector={"matchLabels": selector(ref, component)},
        strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        template=template,
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(ref, child_name(ref, component), component),
        "spec": spec,
    }


def gateway_deployment(ref: SaleRef, spec: FlashSaleSpec, config: OperatorConfig) -> dict[str, Any]:
    env = container_env(gateway_settings(ref, spec, config))
    container = _container(
        "gateway", config.gateway_image, env, ("http", GATEWAY_PORT), ("admin", ADMIN_PORT)
    )
    container["resources"] = copy.deepcopy(spec.gateway.resources or DEFAULT_GATEWAY_RESOURCES)
    container["readinessProbe"] = copy.deepcopy(GATEWAY_READINESS)
    container["livenessProbe"] = copy.deepcopy(GATEWAY_LIVENESS)
    template = _pod_template(
        ref,
        "gateway",
        container,
        annotations=_annotations(env, config, ADMIN_PORT),  # /metrics is on the admin port
        isolation=placement(spec.isolation, config),
        grace=GATEWAY_TERMINATION_GRACE,
    )
    return _deployment(ref, "gateway", spec.gateway.replicas, template)


def consumer_deployment(ref: SaleRef, spec: FlashSaleSpec, config: OperatorConfig) -> dict[str, Any]:
    """No `spec.replicas`: the count belongs to the scaler (`spec.consumers.scaler`), never to the apply.

    builtin: the operator's scaling loop writes it through the Deployment's /scale subresource;
    keda: the HPA that KEDA's ScaledObject (render_keda) creates. A new Deployment starts at the API
    server's default of 1 until the scaler sets it. The apply never owns the field, so re-applying
    on a spec change leaves the scaler's count alone (server-side apply removes only the fields its
    own manager applied before and no longer sends).
    """
    env = container_env(consumer_settings(ref, spec, config))
    container = _container("consumer", config.consumer_image, env, ("metrics", METRICS_PORT))
    container["resources"] = copy.deepcopy(DEFAULT_CONSUMER_RESOURCES)
    container["readinessProbe"] = copy.deepcopy(CONSUMER_READINESS)
    container["livenessProbe"] = copy.deepcopy(CONSUMER_LIVENESS)
    template = _pod_template(
        ref,
        "consumer",
        container,
        annotations=_annotations(env, config, METRICS_PORT),
        isolation=placement(spec.isolation, config),
        grace=CONSUMER_TERMINATION_GRACE,
    )
    return _deployment(ref, "consumer", None, template)


def gateway_service(ref: SaleRef, spec: FlashSaleSpec) -> dict[str, Any]:
    """The public port only: the admin port (probes, metrics, OpenAPI) is reached at the pods' addresses."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(ref, child_name(ref, "gateway"), "gateway"),
        "spec": {
            "type": spec.gateway.service_type,
            "selector": selector(ref, "gateway"),
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def gateway_pdb(ref: SaleRef, spec: FlashSaleSpec) -> dict[str, Any]:
    """At most one gateway evicted at a time.

    maxUnavailable rather than minAvailable = replicas - 1: it follows a replica change without being
    re-rendered, and at one replica it still lets a node drain instead of blocking it forever.
    AlwaysAllow: a gateway that is not Ready serves nobody, evicting it must not wait for it.
    (`spec` is unused today: the budget does not depend on the replica count.)
    """
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(ref, child_name(ref, "gateway"), "gateway"),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector(ref, "gateway")},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
