"""manifests/crd.yaml on a real API server: defaults filled in, bad specs refused, as the model says."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import kubernetes
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes.client import ApiException

from flashsale_dev.cluster import LocalCluster
from flashsale_dev.cluster.launcher import throwaway_cluster
from flashsale_dev.operator_crd import (
    EXAMPLE,
    INVALID_CHANGES,
    INVALID_SPECS,
    STARTS_AT,
    InvalidChange,
    InvalidSpec,
    install_crd,
    minimal_spec,
    with_field,
)
from flashsale_operator import spec as model
from flashsale_operator.spec import GROUP, PLURAL, VERSION, parse_spec
from flashsale_operator.validation import check_spec

pytestmark = pytest.mark.cluster

MERGE_PATCH = "application/merge-patch+json"


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """An API server of this module's own, with no operator: these tests write a FlashSale's status by
    hand, as the operator would, so the session cluster's operator must not run their objects."""
    with throwaway_cluster("flashsale-crd-", pools=()) as local:
        yield local


@pytest.fixture(scope="module")
def crd(cluster: LocalCluster) -> None:
    with cluster.api_client() as api:
        install_crd(api)


@pytest.fixture
def sales(kube_api: kubernetes.client.ApiClient, crd: None) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(kube_api)


def create(sales: Any, namespace: str, spec: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "FlashSale",
        "metadata": {"name": name or f"sale-{uuid.uuid4().hex[:8]}"},
        "spec": spec,
    }
    created: dict[str, Any] = sales.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    return created


def patch(sales: Any, namespace: str, name: str, body: dict[str, Any], *, status: bool = False) -> None:
    method = sales.patch_namespaced_custom_object_status if status else sales.patch_namespaced_custom_object
    method(GROUP, VERSION, namespace, PLURAL, name, body, _content_type=MERGE_PATCH)


def refusal(action: Callable[[], object]) -> tuple[int, str]:
    """The API server's status code and message for an action it must refuse."""
    with pytest.raises(ApiException) as refused:
        action()
    return refused.value.status, json.loads(refused.value.body)["message"]


def test_a_minimal_sale_is_accepted_and_the_server_fills_in_every_default(sales: Any, namespace: str) -> None:
    created = create(sales, namespace, minimal_spec())
    stored = sales.get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, created["metadata"]["name"]
    )
    # The model's defaults, dumped as JSON, are exactly what the server stored.
    assert stored["spec"] == parse_spec(minimal_spec()).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    assert stored["spec"]["gateway"]["userRateLimit"] == {"requests": 5, "perSeconds": 1}


@pytest.mark.parametrize("case", INVALID_SPECS.values(), ids=list(INVALID_SPECS))
def test_an_invalid_spec_is_refused_with_a_message_naming_its_field(
    sales: Any, namespace: str, case: InvalidSpec
) -> None:
    spec = with_field(minimal_spec(), case.path, case.value)
    status, message = refusal(lambda: create(sales, namespace, spec))
    assert status == 422
    assert case.field in message


def test_a_sales_sku_cannot_change(sales: Any, namespace: str) -> None:
    name = create(sales, namespace, minimal_spec())["metadata"]["name"]
    patch(sales, namespace, name, {"spec": {"product": {"name": "Tea kettle"}}})  # the rest of product may

    status, message = refusal(
        lambda: patch(sales, namespace, name, {"spec": {"product": {"sku": "KETTLE-2"}}})
    )
    assert status == 422
    assert "spec.product.sku is immutable" in message


@pytest.mark.parametrize("case", INVALID_CHANGES.values(), ids=list(INVALID_CHANGES))
def test_an_invalid_change_is_refused_with_the_rules_message(
    sales: Any, namespace: str, case: InvalidChange
) -> None:
    name = create(sales, namespace, minimal_spec())["metadata"]["name"]
    changed = with_field({}, case.path, case.value)
    status, message = refusal(lambda: patch(sales, namespace, name, {"spec": changed}))
    assert status == 422
    assert case.refusal in message


def test_stock_is_fixed_once_prewarmed_and_partitions_never_shrink(sales: Any, namespace: str) -> None:
    name = create(sales, namespace, minimal_spec())["metadata"]["name"]
    patch(sales, namespace, name, {"spec": {"stock": 20, "queue": {"partitions": 24}}})
    status, message = refusal(lambda: patch(sales, namespace, name, {"spec": {"queue": {"partitions": 6}}}))
    assert status == 422
    assert "spec.queue.partitions cannot shrink" in message

    patch(sales, namespace, name, {"status": {"prewarmedAt": "2030-11-11T11:55:00Z"}}, status=True)
    status, message = refusal(lambda: patch(sales, namespace, name, {"spec": {"stock": 30}}))
    assert status == 422
    assert "spec.stock cannot change once the sale is prewarmed" in message
    patch(sales, namespace, name, {"spec": {"gateway": {"replicas": 4}}})  # what may change still does


STATUS = {
    "phase": "Live",
    "observedGeneration": 1,
    "prewarmedAt": "2030-07-01T11:55:00Z",
    "startedAt": "2030-07-01T12:00:00Z",
    "pausedAt": "2030-07-01T12:01:00Z",
    "endedAt": "2030-07-01T13:00:00Z",
    "stock": {"total": 100, "remaining": 42, "reserved": 8, "ordered": 50, "paid": 47, "expired": 3},
    "gateway": {"url": "http://127.0.0.1:31080", "readyReplicas": 2},
    "consumers": {
        "replicas": 2,
        "desiredReplicas": 3,
        "lag": 2400,
        "lastScaleTime": "2030-07-01T12:00:03Z",
        "lastScaleReason": "ScaledUp",
        "message": "lag 2400 > 2 x 1000: 3 replicas",
    },
    "flag": {"open": True, "flips": 3, "lastFlipAt": "2030-07-01T12:02:00Z"},
    "conditions": [
        {"type": "AcceptingOrders", "status": "True", "reason": "Opened", "message": "the start flag is on",
         "lastTransitionTime": "2030-07-01T12:00:00Z", "observedGeneration": 1},
        {"type": "Ready", "status": "True", "reason": "AllReady", "message": "the gateways are Ready",
         "lastTransitionTime": "2030-07-01T11:55:02Z", "observedGeneration": 1},
    ],
}  # fmt: skip


def test_the_status_keeps_what_the_operator_writes_and_kubectl_shows_it(
    cluster: LocalCluster, sales: Any, namespace: str
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLE))
    patch(sales, namespace, "summer-drop", {"status": STATUS}, status=True)

    stored = sales.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "summer-drop")
    assert stored["status"] == STATUS  # nothing pruned
    header, row = cluster.kubectl("get", "fsale", "-n", namespace).splitlines()
    assert header.split() == ["NAME", "PHASE", "STOCK", "REMAINING", "STARTS", "AGE"]
    assert row.split()[:5] == ["summer-drop", "Live", "100", "42", stored["spec"]["schedule"]["startsAt"]]
    header, row = cluster.kubectl("get", "fsale", "-n", namespace, "-o", "wide").splitlines()
    assert header.split()[6:] == ["URL", "ORDERED", "PAID", "CONSUMERS", "LAG"]
    assert row.split()[6:] == ["http://127.0.0.1:31080", "50", "47", "2", "2400"]
    waited = cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=Ready", "fsale/summer-drop", "--timeout=60s"
    )
    assert "condition met" in waited


def test_kubectl_explain_tells_what_each_field_means(cluster: LocalCluster, crd: None) -> None:
    explained = " ".join(cluster.kubectl("explain", "flashsale.spec.perUserLimit").split())
    assert "Units one user may buy." in explained
    explained = " ".join(cluster.kubectl("explain", "flashsale.status.conditions.type").split())
    assert "Ready, SpecValid, ChildrenReady" in explained
    explained = " ".join(cluster.kubectl("explain", "flashsale.metadata").split())
    assert "ObjectMeta" in explained


# Invalid by construction, without asking the model: values outside a bound, of the wrong type, or
# failing a pattern or a rule between fields.
def _outside(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(min_value=-(2**62), max_value=low - 1) | st.integers(
        min_value=high + 1, max_value=2**62
    )


def _not_matching(pattern: str) -> st.SearchStrategy[str]:
    return st.text(max_size=40).filter(lambda text: re.fullmatch(pattern.strip("^$"), text, re.ASCII) is None)


def _when(seconds: st.SearchStrategy[int]) -> st.SearchStrategy[str]:
    return seconds.map(lambda s: (STARTS_AT + timedelta(seconds=s)).isoformat().replace("+00:00", "Z"))


_FLOATS = st.floats(allow_nan=False, allow_infinity=False)
_NOT_INT = st.text(max_size=8) | st.booleans() | _FLOATS.filter(lambda f: not f.is_integer())
_NOT_STR = st.integers() | st.booleans() | _FLOATS | st.lists(st.integers(), max_size=2)
_BAD_NUMBER = st.text(max_size=8) | st.booleans()
_SERVICE_TYPES = {"LoadBalancer", "ClusterIP", "NodePort"}
_BAD_QUANTITY = _not_matching(model.QUANTITY_PATTERN) | st.integers(max_value=-1) | st.booleans()
_BAD_TOLERATION = st.fixed_dictionaries(
    {
        "key": st.just("dedicated"),
        "operator": st.text(max_size=8).filter(lambda o: o not in {"Exists", "Equal"}),
    }
)
_INVALID_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "stock": _outside(1, model.MAX_STOCK) | _NOT_INT,
    "perUserLimit": st.integers(11, 1000) | _outside(1, model.MAX_PER_USER_LIMIT) | _NOT_INT,  # stock is 10
    "paymentTimeoutSeconds": _outside(1, model.MAX_PAYMENT_TIMEOUT_SECONDS) | _NOT_INT,
    "product.sku": _not_matching(model.SKU_PATTERN) | _NOT_STR,
    "product.name": st.just("") | st.text(min_size=201, max_size=230) | _NOT_STR,
    "product.price": _not_matching(model.PRICE_PATTERN) | _NOT_STR,
    "product.currency": st.text(max_size=5).filter(lambda c: c not in model.CURRENCIES) | _NOT_STR,
    "product.imageUrl": _not_matching(model.IMAGE_URL_PATTERN) | _NOT_STR,
    "schedule.startsAt": st.text(max_size=30) | _when(st.integers(1, 10**6)).map(lambda t: t[:-1]) | _NOT_STR,
    "schedule.endsAt": _when(st.integers(-(10**8), 0)) | _when(st.integers(31 * 86_400 + 1, 10**8)),
    "schedule.prewarmSeconds": _outside(0, model.MAX_PREWARM_SECONDS) | _NOT_INT,
    "paused": st.integers() | st.text(max_size=8),
    "gateway.replicas": _outside(1, model.MAX_GATEWAY_REPLICAS) | _NOT_INT,
    "gateway.admissionRate": _FLOATS.filter(lambda f: not 0 < f <= 1_000_000) | _BAD_NUMBER,
    "gateway.userRateLimit.perSeconds": _FLOATS.filter(lambda f: not 0 < f <= 3600) | _BAD_NUMBER,
    "gateway.serviceType": st.text(max_size=14).filter(lambda t: t not in _SERVICE_TYPES),
    "gateway.resources": st.fixed_dictionaries({"limits": st.fixed_dictionaries({"cpu": _BAD_QUANTITY})}),
    "queue.partitions": _outside(1, model.MAX_PARTITIONS) | _NOT_INT,
    "queue.mode": st.text(max_size=10).filter(lambda m: m not in {"shared", "dedicated"}) | _NOT_STR,
    # 12 partitions: at most 12 consumers at the floor.
    "consumers.minReplicas": st.integers(13, 256) | _outside(1, model.MAX_CONSUMER_REPLICAS) | _NOT_INT,
    "consumers.maxReplicas": _outside(1, model.MAX_CONSUMER_REPLICAS) | _NOT_INT,
    "consumers": st.integers(2, 12).flatmap(
        lambda low: st.integers(1, low - 1).map(lambda high: {"minReplicas": low, "maxReplicas": high})
    ),
    "consumers.lagThreshold": _outside(1, model.MAX_LAG_THRESHOLD) | _NOT_INT,
    "consumers.scaleDownStabilizationSeconds": _outside(0, model.MAX_STABILIZATION_SECONDS) | _NOT_INT,
    "consumers.scaler": st.text(max_size=10).filter(lambda s: s not in {"builtin", "keda"}) | _NOT_STR,
    "isolation.nodeSelector": st.dictionaries(
        st.text(min_size=1, max_size=10), _not_matching(model.LABEL_VALUE_PATTERN), min_size=1, max_size=3
    ),
    "isolation.tolerations": st.lists(_BAD_TOLERATION, min_size=1, max_size=3),
    "isolation.priorityClassName": _not_matching(model.DNS_SUBDOMAIN_PATTERN) | _NOT_STR,
}
_INVALID_SPECS = st.sampled_from(sorted(_INVALID_VALUES)).flatmap(
    lambda path: _INVALID_VALUES[path].map(lambda value: with_field(minimal_spec(), path, value))
)


@settings(
    max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=_INVALID_SPECS)
def test_generated_invalid_specs_are_refused_by_the_server_and_by_check_spec(
    sales: Any, namespace: str, spec: dict[str, Any]
) -> None:
    status, message = refusal(lambda: create(sales, namespace, spec))
    assert status == 422, message
    parsed, problems = check_spec(spec)  # the model and the CRD agree
    assert parsed is None, f"the server refused what check_spec takes: {message}"
    assert problems
