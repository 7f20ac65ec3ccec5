"""The FlashSale CRD for tests: install manifests/crd.yaml as it is, and the specs it must take or refuse.

`install_crd` is idempotent (server-side apply of the same file is a no-op), so every test module
that needs the resource installs it without caring who did first. `INVALID_SPECS` is one table
for both sides: the unit tier checks that `check_spec` reports each case's field and reason, the
cluster tier that the API server refuses the same spec with a message naming that field.
`INVALID_CHANGES` is the same for changes to an existing sale (`check_change` on one side, the CRD's
transition rules on the other).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, NamedTuple

import kubernetes
import yaml

from flashsale_dev.waiting import wait_for

_REPO: Final = Path(__file__).resolve().parents[2]
CRD_FILE: Final = _REPO / "manifests" / "crd.yaml"
EXAMPLE: Final = _REPO / "examples" / "flashsale.yaml"
CRD_NAME: Final = "flashsales.flashsale.dev"
FIELD_MANAGER: Final = "flashsale-install"  # the same manager as kubectl apply in operator_install

STARTS_AT: Final = datetime(2030, 11, 11, 12, 0, tzinfo=UTC)
ENDS_AT: Final = datetime(2030, 11, 11, 13, 0, tzinfo=UTC)
_MINIMAL: Final[dict[str, Any]] = {
    "product": {"sku": "KETTLE-1", "name": "Kettle", "price": "49.90", "currency": "EUR"},
    "stock": 10,
    "perUserLimit": 1,
    "schedule": {"startsAt": "2030-11-11T12:00:00Z", "endsAt": "2030-11-11T13:00:00Z"},
    "paymentTimeoutSeconds": 900,
}
DELETE: Final = object()  # as a value in `with_field`: leave the field out


def crd_manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CRD_FILE.read_text())
    return loaded


def spec_schema() -> dict[str, Any]:
    """The openAPIV3Schema of `spec`, as the file says it."""
    version = crd_manifest()["spec"]["versions"][0]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


def install_crd(api_client: kubernetes.client.ApiClient, *, timeout: float = 120) -> None:
    """Apply manifests/crd.yaml (server-side, forced) and wait until the API serves FlashSales."""
    extensions = kubernetes.client.ApiextensionsV1Api(api_client)
    extensions.patch_custom_resource_definition(
        CRD_NAME,
        crd_manifest(),
        field_manager=FIELD_MANAGER,
        force=True,
        _content_type="application/apply-patch+yaml",
    )
    wait_for(lambda: _established(extensions), timeout=timeout, what=f"CRD {CRD_NAME} Established")


def _established(extensions: kubernetes.client.ApiextensionsV1Api) -> bool:
    conditions = extensions.read_custom_resource_definition(CRD_NAME).status.conditions or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


def minimal_spec() -> dict[str, Any]:
    """Only the required fields: a complete sale."""
    return copy.deepcopy(_MINIMAL)


def with_field(spec: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `spec` with the dotted `path` set to `value` (or removed, for DELETE)."""
    changed = copy.deepcopy(spec)
    *parents, last = path.split(".")
    node = changed
    for part in parents:
        node = node.setdefault(part, {})
    if value is DELETE:
        node.pop(last, None)
    else:
        node[last] = value
    return changed


class InvalidSpec(NamedTuple):
    path: str  # the dotted field under spec to set
    value: Any
    field: str  # the JSON path both the API server and check_spec name
    reason: str  # check_spec's reason


INVALID_SPECS: Final = {
    "stock missing": InvalidSpec("stock", DELETE, "spec.stock", "MissingField"),
    "stock zero": InvalidSpec("stock", 0, "spec.stock", "OutOfRange"),
    "stock above ten million": InvalidSpec("stock", 10_000_001, "spec.stock", "OutOfRange"),
    "stock as a string": InvalidSpec("stock", "10", "spec.stock", "InvalidType"),
    "perUserLimit above stock": InvalidSpec("perUserLimit", 11, "spec.perUserLimit", "LimitAboveStock"),
    "perUserLimit above 1000": InvalidSpec("perUserLimit", 1001, "spec.perUserLimit", "OutOfRange"),
    "sku with a space": InvalidSpec("product.sku", "KETTLE 1", "spec.product.sku", "InvalidFormat"),
    "empty name": InvalidSpec("product.name", "", "spec.product.name", "InvalidLength"),
    "price with 3 decimals": InvalidSpec("product.price", "49.999", "spec.product.price", "InvalidFormat"),
    "price as a number": InvalidSpec("product.price", 49.9, "spec.product.price", "InvalidType"),
    "currency not ISO 4217": InvalidSpec("product.currency", "EUD", "spec.product.currency", "NotSupported"),
    "currency lower case": InvalidSpec("product.currency", "eur", "spec.product.currency", "NotSupported"),
    "imageUrl not http": InvalidSpec(
        "product.imageUrl", "ftp://example.com/kettle.png", "spec.product.imageUrl", "InvalidFormat"
    ),
    "startsAt without a zone": InvalidSpec(
        "schedule.startsAt", "2030-11-11T12:00:00", "spec.schedule.startsAt", "InvalidFormat"
    ),
    "startsAt with a space": InvalidSpec(
        "schedule.startsAt", "2030-11-11 12:00:00Z", "spec.schedule.startsAt", "InvalidFormat"
    ),
    "endsAt missing": InvalidSpec("schedule.endsAt", DELETE, "spec.schedule.endsAt", "MissingField"),
    "endsAt at startsAt": InvalidSpec(
        "schedule.endsAt", "2030-11-11T12:00:00Z", "spec.schedule.endsAt", "EndsBeforeStart"
    ),
    "a sale of 32 days": InvalidSpec(
        "schedule.endsAt", "2030-12-13T12:00:00Z", "spec.schedule.endsAt", "SaleTooLong"
    ),
    "prewarm over a day": InvalidSpec(
        "schedule.prewarmSeconds", 86_401, "spec.schedule.prewarmSeconds", "OutOfRange"
    ),
    "payment timeout zero": InvalidSpec(
        "paymentTimeoutSeconds", 0, "spec.paymentTimeoutSeconds", "OutOfRange"
    ),
    "paused as a string": InvalidSpec("paused", "yes", "spec.paused", "InvalidType"),
    "gateway replicas 0": InvalidSpec("gateway.replicas", 0, "spec.gateway.replicas", "OutOfRange"),
    "admissionRate zero": InvalidSpec("gateway.admissionRate", 0, "spec.gateway.admissionRate", "OutOfRange"),
    "user rate window zero": InvalidSpec(
        "gateway.userRateLimit.perSeconds", 0, "spec.gateway.userRateLimit.perSeconds", "OutOfRange"
    ),
    "ExternalName service": InvalidSpec(
        "gateway.serviceType", "ExternalName", "spec.gateway.serviceType", "NotSupported"
    ),
    "cpu request not a quantity": InvalidSpec(
        "gateway.resources",
        {"requests": {"cpu": "lots"}},
        "spec.gateway.resources.requests.cpu",
        "InvalidFormat",
    ),
    "partitions above 256": InvalidSpec("queue.partitions", 257, "spec.queue.partitions", "OutOfRange"),
    "queue mode not supported": InvalidSpec("queue.mode", "other", "spec.queue.mode", "NotSupported"),
    "more consumers than partitions": InvalidSpec(
        "consumers.minReplicas", 13, "spec.consumers.minReplicas", "MoreConsumersThanPartitions"
    ),
    "maxReplicas below minReplicas": InvalidSpec(
        "consumers",
        {"minReplicas": 4, "maxReplicas": 3},
        "spec.consumers.maxReplicas",
        "MaxReplicasBelowMinReplicas",
    ),
    "lagThreshold zero": InvalidSpec(
        "consumers.lagThreshold", 0, "spec.consumers.lagThreshold", "OutOfRange"
    ),
    "negative scale-down window": InvalidSpec(
        "consumers.scaleDownStabilizationSeconds",
        -1,
        "spec.consumers.scaleDownStabilizationSeconds",
        "OutOfRange",
    ),
    "scaler not supported": InvalidSpec("consumers.scaler", "hpa", "spec.consumers.scaler", "NotSupported"),
    "node selector value": InvalidSpec(
        "isolation.nodeSelector", {"pool": "-flashsale"}, "spec.isolation.nodeSelector.pool", "InvalidFormat"
    ),
    "toleration operator": InvalidSpec(
        "isolation.tolerations",
        [{"key": "dedicated", "operator": "Sometimes"}],
        "spec.isolation.tolerations[0].operator",
        "NotSupported",
    ),
    "toleration Exists with a value": InvalidSpec(
        "isolation.tolerations",
        [{"key": "dedicated", "operator": "Exists", "value": "flashsale"}],
        "spec.isolation.tolerations[0]",
        "InvalidField",
    ),
    "priority class name": InvalidSpec(
        "isolation.priorityClassName", "Flash_Sale", "spec.isolation.priorityClassName", "InvalidFormat"
    ),
}


class InvalidChange(NamedTuple):
    path: str  # the dotted field under spec to change, from minimal_spec()
    value: Any
    field: str  # the JSON path check_change names
    reason: str  # check_change's reason
    refusal: str  # what the API server's refusal says (the CRD rule's message)


INVALID_CHANGES: Final = {
    "sku changed": InvalidChange(
        "product.sku", "KETTLE-2", "spec.product.sku", "ImmutableField", "spec.product.sku is immutable"
    ),
    "partitions shrunk": InvalidChange(
        "queue.partitions",
        6,
        "spec.queue.partitions",
        "PartitionsCannotShrink",
        "spec.queue.partitions cannot shrink",
    ),
    "queue mode shared to dedicated": InvalidChange(
        "queue.mode", "dedicated", "spec.queue.mode", "ImmutableField", "spec.queue.mode is immutable"
    ),
}
