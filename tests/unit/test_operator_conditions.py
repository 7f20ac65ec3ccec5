"""The FlashSale's Ready condition sums up the others, so `kubectl wait --for=condition=Ready fsale/NAME`
returns once the sale is set up to take orders at its start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flashsale_operator.conditions import READY_NEEDS, ConditionType, Reason, set_condition, with_ready

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def reported(*false: ConditionType, missing: tuple[ConditionType, ...] = ()) -> list[dict[str, Any]]:
    """Every condition Ready needs, True but for `false` (reason `Why<Type>`) and `missing`."""
    conditions: list[dict[str, Any]] = []
    for kind in READY_NEEDS:
        if kind not in missing:
            ok = kind not in false
            why, says = f"Why{kind}", f"{kind} says so"
            conditions = set_condition(conditions, kind, ok, why, says, now=NOW, generation=3)
    return conditions


def ready(conditions: list[dict[str, Any]], now: datetime = NOW) -> dict[str, Any]:
    return next(c for c in with_ready(conditions, now=now, generation=3) if c["type"] == ConditionType.READY)


def test_a_sale_is_ready_once_its_spec_children_gate_and_gateways_are() -> None:
    summary = ready(reported())
    assert (summary["status"], summary["reason"], summary["observedGeneration"]) == ("True", "AllReady", 3)


def test_ready_is_false_with_the_first_unmet_conditions_reason_and_message() -> None:
    summary = ready(reported(ConditionType.GATEWAY_READY, ConditionType.GATE_READY))
    assert (summary["status"], summary["reason"]) == ("False", "WhyGateReady")
    assert summary["message"] == "GateReady: GateReady says so"


def test_a_condition_not_reported_yet_keeps_ready_false() -> None:
    summary = ready(reported(missing=(ConditionType.GATEWAY_READY,)))
    assert (summary["status"], summary["reason"]) == ("False", Reason.NOT_REPORTED)
    assert "GatewayReady" in summary["message"]


def test_a_sale_being_deleted_is_not_ready() -> None:
    draining = set_condition(reported(), ConditionType.DRAINING, True, Reason.ORDERS_UNWRITTEN, "3 unwritten",
                             now=NOW, generation=3)  # fmt: skip
    summary = ready(draining)
    assert (summary["status"], summary["reason"]) == ("False", "Deleting")
    assert "3 unwritten" in summary["message"]


def test_readys_transition_time_moves_only_when_its_status_does() -> None:
    first = with_ready(reported(), now=NOW, generation=3)
    later = NOW + timedelta(minutes=5)
    still = next(c for c in with_ready(first, now=later, generation=3) if c["type"] == ConditionType.READY)
    assert still["lastTransitionTime"] == "2026-12-06T12:00:00Z"
    lost = set_condition(first, ConditionType.GATEWAY_READY, False, "ReplicasNotReady", "1/2", now=later,
                         generation=3)  # fmt: skip
    assert ready(lost, later)["lastTransitionTime"] == "2026-12-06T12:05:00Z"


def test_ready_leaves_the_other_conditions_as_they_are() -> None:
    conditions = reported(ConditionType.GATE_READY)
    summed = with_ready(conditions, now=NOW, generation=3)
    assert [c for c in summed if c["type"] != ConditionType.READY] == conditions
