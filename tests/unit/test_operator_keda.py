"""`spec.consumers.scaler: keda` renders a KEDA ScaledObject that KEDA's CRD would take (KEDA is not
installed here): checked against a hand-written schema of keda.sh/v1alpha1 ScaledObject, and a golden file.

`UPDATE_GOLDEN=1 pytest tests/unit/test_operator_keda.py` rewrites tests/unit/golden/operator/keda/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from flashsale_dev.golden import assert_matches_golden
from flashsale_operator.config import OperatorConfig
from flashsale_operator.render import SaleRef, children, consumer_deployment, owner_reference, scaled_object
from flashsale_operator.render_env import consumer_settings
from flashsale_operator.spec import FlashSaleSpec, parse_spec
from flashsale_sale.contract import consumer_group, topic_name

pytestmark = pytest.mark.unit

GOLDEN: Final = Path(__file__).parent / "golden" / "operator" / "keda"
REF: Final = SaleRef(name="kettle", namespace="shop-sales", uid="6f1c2a9e-0b7d-4c1e-9a53-2d8e4f7b1c30")
SPEC: Final[dict[str, Any]] = {
    "product": {"sku": "KETTLE-1", "name": "Copper kettle", "price": "49.00", "currency": "EUR"},
    "stock": 100,
    "perUserLimit": 1,
    "schedule": {"startsAt": "2030-11-11T11:11:00Z", "endsAt": "2030-11-11T12:11:00Z"},
    "paymentTimeoutSeconds": 900,
    "consumers": {"minReplicas": 2, "maxReplicas": 6, "lagThreshold": 500},
}


def config() -> OperatorConfig:
    return OperatorConfig(
        redis_url="redis://10.0.0.5:6379/0",
        kafka_bootstrap_servers="kafka-0.kafka.middleware.svc:9092,10.0.0.7:9093",
        database_url="postgresql://flashsale:hunter2@10.0.0.9:5432/flashsale",  # type: ignore[arg-type]
        user_token_key="platform-user-token-key-0123456789",  # type: ignore[arg-type]
        payment_key="platform-payment-key-0123456789",  # type: ignore[arg-type]
        gateway_database_url="postgresql://sale_gateway:gw@10.0.0.9:5432/flashsale",  # type: ignore[arg-type]
        consumer_database_url="postgresql://sale_consumer:co@10.0.0.9:5432/flashsale",  # type: ignore[arg-type]
    )


_INT32: Final = {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}
_STRING: Final = {"type": "string"}
# The fields of KEDA's CRD `scaledobjects.keda.sh` (kedacore/keda, config/crd/bases/
# keda.sh_scaledobjects.yaml, version v1alpha1) that the operator renders, with their types and what
# the CRD requires: spec.scaleTargetRef (name), spec.triggers[] (type, metadata: a map of strings);
# pollingInterval, cooldownPeriod, minReplicaCount, maxReplicaCount are int32; the HPA behavior's
# stabilizationWindowSeconds is 0..3600 (autoscaling/v2). Stricter than the CRD in one way: no field
# it does not know (the API server would prune a misspelt one silently; here it fails).
SCALED_OBJECT_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"enum": ["keda.sh/v1alpha1"]},
        "kind": {"enum": ["ScaledObject"]},
        "metadata": {
            "type": "object",
            "required": ["name", "namespace"],
            "properties": {"name": _STRING, "namespace": _STRING},
        },
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "apiVersion": _STRING,
                        "kind": _STRING,
                        "name": _STRING,
                        "envSourceContainerName": _STRING,
                    },
                },
                "pollingInterval": _INT32,
                "cooldownPeriod": _INT32,
                "idleReplicaCount": _INT32,
                "minReplicaCount": _INT32,
                "maxReplicaCount": _INT32,
                "advanced": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "restoreToOriginalReplicaCount": {"type": "boolean"},
                        "horizontalPodAutoscalerConfig": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "name": _STRING,
                                "behavior": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {
                                        direction: {
                                            "type": "object",
                                            "additionalProperties": False,
                                            "properties": {
                                                "stabilizationWindowSeconds": {
                                                    "type": "integer",
                                                    "minimum": 0,
                                                    "maximum": 3600,
                                                },
                                                "selectPolicy": {"enum": ["Max", "Min", "Disabled"]},
                                                "policies": {"type": "array"},
                                            },
                                        }
                                        for direction in ("scaleUp", "scaleDown")
                                    },
                                },
                            },
                        },
                    },
                },
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "additionalProperties": False,
                        "properties": {
                            "type": _STRING,
                            "name": _STRING,
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            "useCachedMetrics": {"type": "boolean"},
                            "metadata": {"type": "object", "additionalProperties": _STRING},
                            "authenticationRef": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {"name": _STRING, "kind": _STRING},
                            },
                        },
                    },
                },
            },
        },
    },
}

_TYPES: Final[dict[str, type | tuple[type, ...]]] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "boolean": bool,
}


def schema_errors(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """The few JSON Schema keywords the schema above uses (jsonschema is not installed here)."""
    kind = schema.get("type")
    if kind is not None:
        fits = isinstance(value, _TYPES[kind]) and not (kind == "integer" and isinstance(value, bool))
        if not fits:
            return [f"{path or '.'}: {value!r} is not of type {kind}"]
    errors = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{path}: {value} < {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{path}: {value} > {schema['maximum']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        for index, item in enumerate(value):
            errors += schema_errors(item, schema.get("items", {}), f"{path}[{index}]")
    if isinstance(value, dict):
        errors += _object_errors(value, schema, path)
    return errors


def _object_errors(value: dict[str, Any], schema: dict[str, Any], path: str) -> list[str]:
    errors = [f"{path}.{name}: required" for name in schema.get("required", []) if name not in value]
    properties, extra = schema.get("properties", {}), schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in properties:
            errors += schema_errors(item, properties[name], f"{path}.{name}")
        elif extra is False:
            errors.append(f"{path}.{name}: not a field of the schema")
        elif isinstance(extra, dict):
            errors += schema_errors(item, extra, f"{path}.{name}")
    return errors


def keda_spec(**consumers: Any) -> FlashSaleSpec:
    return parse_spec({**SPEC, "consumers": {**SPEC["consumers"], "scaler": "keda", **consumers}})


def test_the_schema_check_catches_what_keda_would_refuse_or_prune() -> None:
    rendered = scaled_object(REF, keda_spec(), config())
    assert schema_errors(rendered, SCALED_OBJECT_SCHEMA) == []
    broken = yaml.safe_load(yaml.safe_dump(rendered))
    broken["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 500
    broken["spec"]["maxReplicaCount"] = "6"
    broken["spec"]["scaleTargetRef"] = {"kind": "Deployment", "nmae": "kettle-consumer"}
    del broken["spec"]["triggers"][0]["type"]
    assert len(schema_errors(broken, SCALED_OBJECT_SCHEMA)) == 5


def test_the_scaled_object_fits_kedas_schema_and_targets_the_consumers() -> None:
    spec = keda_spec()
    rendered = scaled_object(REF, spec, config())
    assert schema_errors(rendered, SCALED_OBJECT_SCHEMA) == []
    deployment = consumer_deployment(REF, spec, config())
    assert rendered["spec"]["scaleTargetRef"] == {
        "apiVersion": deployment["apiVersion"],
        "kind": deployment["kind"],
        "name": deployment["metadata"]["name"],
    }
    meta = rendered["metadata"]
    assert (meta["name"], meta["namespace"]) == ("kettle-consumer", REF.namespace)
    assert meta["ownerReferences"] == [owner_reference(REF)]
    assert meta["labels"]["flashsale.dev/sale"] == "kettle"


def test_the_trigger_reads_the_consumers_own_group_topic_and_brokers() -> None:
    spec = keda_spec()
    (trigger,) = scaled_object(REF, spec, config())["spec"]["triggers"]
    assert trigger == {
        "type": "kafka",
        "metadata": {
            "bootstrapServers": consumer_settings(REF, spec, config())["FLASHSALE_KAFKA_BOOTSTRAP_SERVERS"],
            "consumerGroup": consumer_group(REF.uid),
            "topic": topic_name(REF.uid),
            "lagThreshold": "500",
            "offsetResetPolicy": "earliest",
            "allowIdleConsumers": "false",
            "limitToPartitionsWithLag": "false",
        },
    }


@pytest.mark.parametrize(
    ("consumers", "partitions", "bounds"),
    [
        ({"minReplicas": 2, "maxReplicas": 6}, 12, (2, 6)),
        ({"minReplicas": 1, "maxReplicas": None}, 12, (1, 12)),  # unset: the partition count
        ({"minReplicas": 1, "maxReplicas": 40}, 8, (1, 8)),  # never above the partitions
    ],
)
def test_the_replica_bounds_and_the_window_come_from_the_spec(
    consumers: dict[str, Any], partitions: int, bounds: tuple[int, int]
) -> None:
    spec = parse_spec(
        {
            **SPEC,
            "queue": {"partitions": partitions},
            "consumers": {"scaler": "keda", "scaleDownStabilizationSeconds": 15, **consumers},
        }
    )
    rendered = scaled_object(REF, spec, config())["spec"]
    assert (rendered["minReplicaCount"], rendered["maxReplicaCount"]) == bounds
    assert (rendered["pollingInterval"], rendered["cooldownPeriod"]) == (5, 60)
    behavior = rendered["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior == {"scaleDown": {"stabilizationWindowSeconds": 15}}


def test_keda_sales_get_the_scaled_object_after_their_consumers_and_no_replicas() -> None:
    kinds = [(c["kind"], c["metadata"]["name"]) for c in children(REF, keda_spec(), config())]
    at = kinds.index(("Deployment", "kettle-consumer"))
    assert kinds[at + 1] == ("ScaledObject", "kettle-consumer")
    assert kinds[-1] == ("Deployment", "kettle-gateway")
    assert "replicas" not in consumer_deployment(REF, keda_spec(), config())["spec"]


def test_the_scaled_object_matches_its_golden_file() -> None:
    child = scaled_object(REF, keda_spec(), config())
    assert_matches_golden(child, GOLDEN)
