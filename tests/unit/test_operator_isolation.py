"""A tenant's FlashSale may place its pods only where the platform allows: spec.isolation is checked
against the allow-list in the operator's configuration, and anything outside it is refused with the
field and the value named."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from flashsale_dev.operator_crd import STARTS_AT, minimal_spec
from flashsale_operator.acceptance import judge
from flashsale_operator.config import OperatorConfig
from flashsale_operator.isolation import AllowList, allow_list
from flashsale_operator.spec import parse_spec
from flashsale_operator.validation import check_spec

pytestmark = pytest.mark.unit

POOL = {"key": "dedicated", "operator": "Equal", "value": "flashsale", "effect": "NoSchedule"}


def config(**overrides: Any) -> OperatorConfig:
    values: dict[str, Any] = {
        "redis_url": "redis://10.0.0.5:6379/0",
        "kafka_bootstrap_servers": "10.0.0.7:9092",
        "database_url": "postgresql://flashsale@10.0.0.9:5432/flashsale",
        "user_token_key": "platform-user-token-key-0123456789",
        "payment_key": "platform-payment-key-0123456789",
        "gateway_database_url": "postgresql://sale_gateway@10.0.0.9:5432/flashsale",
        "consumer_database_url": "postgresql://sale_consumer@10.0.0.9:5432/flashsale",
    }
    return OperatorConfig(**{**values, **overrides})


DEFAULTS = allow_list(config())


def asking(**isolation: Any) -> dict[str, Any]:
    return {**minimal_spec(), "isolation": isolation}


def refusals(spec: dict[str, Any], allowed: AllowList = DEFAULTS) -> list[tuple[str, str, str]]:
    parsed, problems = check_spec(spec, allowed)
    assert (parsed is None) == bool(problems)
    return [(p.field, p.reason, p.message) for p in problems]


def test_by_default_exactly_the_platform_default_isolation_is_allowed() -> None:
    assert AllowList(({"pool": "flashsale"},), (POOL,), frozenset({"flashsale-sale"})) == DEFAULTS
    assert refusals(minimal_spec()) == []  # nothing asked: the default
    assert refusals(asking(nodeSelector={}, tolerations=[], priorityClassName=None)) == []  # empty: too
    exact = asking(nodeSelector={"pool": "flashsale"}, tolerations=[POOL], priorityClassName="flashsale-sale")
    assert refusals(exact) == []


@pytest.mark.parametrize(
    ("isolation", "field", "reason", "named"),
    [
        ({"nodeSelector": {"pool": "shop"}}, "spec.isolation.nodeSelector", "NodeSelectorNotAllowed",
         "{pool=shop}"),
        ({"nodeSelector": {"kubernetes.io/hostname": "flashsale-1"}}, "spec.isolation.nodeSelector",
         "NodeSelectorNotAllowed", "{kubernetes.io/hostname=flashsale-1}"),
        ({"priorityClassName": "system-cluster-critical"}, "spec.isolation.priorityClassName",
         "PriorityClassNotAllowed", "'system-cluster-critical'"),
        ({"tolerations": [{"operator": "Exists"}]}, "spec.isolation.tolerations", "TolerationNotAllowed",
         "*:<every effect>"),
        ({"tolerations": [{**POOL, "value": "shop"}]}, "spec.isolation.tolerations", "TolerationNotAllowed",
         "dedicated=shop:NoSchedule"),
        # The pool's taint without an effect tolerates NoExecute too: not the allowed toleration.
        ({"tolerations": [{"key": "dedicated", "value": "flashsale"}]}, "spec.isolation.tolerations",
         "TolerationNotAllowed", "dedicated=flashsale:<every effect>"),
        ({"tolerations": [POOL, {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                                 "effect": "NoSchedule"}]},
         "spec.isolation.tolerations", "TolerationNotAllowed",
         "node-role.kubernetes.io/control-plane:NoSchedule"),
    ],
)  # fmt: skip
def test_a_sale_asking_for_more_than_the_platform_allows_is_refused_naming_field_and_value(
    isolation: dict[str, Any], field: str, reason: str, named: str
) -> None:
    ((got_field, got_reason, message),) = refusals(asking(**isolation))
    assert (got_field, got_reason) == (field, reason)
    assert field in message
    assert named in message


def test_more_labels_narrow_an_allowed_pool_and_omitted_toleration_fields_mean_their_defaults() -> None:
    narrower = asking(nodeSelector={"pool": "flashsale", "zone": "a"})
    assert refusals(narrower) == []
    spelled_out = {"key": "dedicated", "value": "flashsale", "effect": "NoSchedule"}  # operator: Equal
    assert refusals(asking(tolerations=[spelled_out])) == []


def test_the_platform_team_widens_the_list_in_the_operator_configuration() -> None:
    gpu = {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}
    wider = allow_list(config(
        allowed_node_selectors='[{"pool": "flashsale-eu"}]',  # as the ConfigMap gives it: JSON
        allowed_tolerations=[gpu],
        allowed_priority_class_names=["flashsale-vip"],
    ))  # fmt: skip
    eu = asking(nodeSelector={"pool": "flashsale-eu"}, tolerations=[gpu], priorityClassName="flashsale-vip")
    assert refusals(eu, wider) == []
    assert refusals(minimal_spec(), wider) == []  # the default stays allowed
    assert [r for _, r, _ in refusals(asking(nodeSelector={"pool": "shop"}), wider)] == [
        "NodeSelectorNotAllowed"
    ]


def test_a_new_sale_outside_the_list_fails_and_a_running_one_keeps_its_spec() -> None:
    now = STARTS_AT - timedelta(hours=1)
    shop = asking(nodeSelector={"pool": "shop"})
    new = judge(shop, now=now, previous=None, prewarmed=False, recorded_stock=None, allowed=DEFAULTS)
    assert new.spec is None
    assert [p.reason for p in new.problems] == ["NodeSelectorNotAllowed"]
    running = parse_spec(minimal_spec())
    change = judge(shop, now=now, previous=running, prewarmed=True, recorded_stock=None, allowed=DEFAULTS)
    assert change.spec == running
    assert change.refused_change
