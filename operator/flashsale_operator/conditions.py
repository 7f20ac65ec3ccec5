"""The FlashSale's status conditions: one upsert keyed by type, and every reason in one place."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any


class ConditionType(StrEnum):
    READY = "Ready"  # the summary of the four below: `kubectl wait --for=condition=Ready fsale/NAME`
    SPEC_VALID = "SpecValid"  # the spec passed the checks the schema cannot make
    CHILDREN_READY = "ChildrenReady"  # topic, Secret, Deployments, Service applied
    GATE_READY = "GateReady"  # the Redis stock gate is built
    GATEWAY_READY = "GatewayReady"  # every gateway replica Ready and the Service has an address
    ACCEPTING_ORDERS = "AcceptingOrders"  # the start flag is on
    DRAINING = "Draining"  # deleted: the teardown waits for every accepted reservation to be written


class Reason(StrEnum):
    VALID = "Valid"
    INVALID_FIELD = "InvalidField"
    STARTS_IN_THE_PAST = "StartsInThePast"
    IMMUTABLE_FIELD = "ImmutableField"
    APPLIED = "Applied"
    APPLY_FAILED = "ApplyFailed"
    WAITING = "Waiting"  # for a child that is starting (a dedicated queue's broker)
    CONFLICT = "Conflict"  # a child's name is taken by an object that is not the sale's (ownership.py)
    KAFKA_UNAVAILABLE = "KafkaUnavailable"
    PREWARMED = "Prewarmed"
    NOT_PREWARMED = "NotPrewarmed"
    PREWARM_FAILED = "PrewarmFailed"
    GATE_LOST = "GateLost"
    REBUILT = "Rebuilt"
    REPLICAS_READY = "ReplicasReady"
    REPLICAS_NOT_READY = "ReplicasNotReady"
    OPENED = "Opened"
    NOT_STARTED = "NotStarted"
    PAUSED = "Paused"
    ENDED = "Ended"
    REDIS_UNAVAILABLE = "RedisUnavailable"
    ORDERS_UNWRITTEN = "OrdersUnwritten"  # the consumer group lags on the sale's topic
    LAG_UNKNOWN = "LagUnknown"  # Kafka does not say how far the consumers are
    DROP_REFUSED = "DropRefused"  # the escape hatch cannot keep a dedicated queue's messages
    DRAINED = "Drained"  # every accepted reservation is an order
    UNWRITTEN_KEPT = "UnwrittenKept"  # the escape hatch: the rest left in the kept topic
    UNWRITTEN_LOST = "UnwrittenLost"  # the escape hatch on a dedicated queue: the rest goes with its broker
    ALL_READY = "AllReady"  # Ready: every condition it sums up is True
    NOT_REPORTED = "NotReported"  # Ready: a condition it sums up is not reported yet
    DELETING = "Deleting"  # Ready: the FlashSale is being deleted


# What Ready sums up, in the order a sale meets them: the first one not True gives Ready its reason.
READY_NEEDS = (
    ConditionType.SPEC_VALID,
    ConditionType.CHILDREN_READY,
    ConditionType.GATE_READY,
    ConditionType.GATEWAY_READY,
)


def set_condition(
    conditions: list[dict[str, Any]],
    kind: ConditionType,
    status: bool,
    reason: Reason | str,
    message: str,
    *,
    now: datetime,
    generation: int | None,
) -> list[dict[str, Any]]:
    """A new list with the condition of `kind` replaced; lastTransitionTime moves only when status does."""
    value = "True" if status else "False"
    previous = next((c for c in conditions if c.get("type") == kind), None)
    changed = previous is None or previous.get("status") != value
    condition = {
        "type": str(kind),
        "status": value,
        "reason": str(reason),
        "message": message,
        "lastTransitionTime": _rfc3339(now) if changed else previous.get("lastTransitionTime"),  # type: ignore[union-attr]
        "observedGeneration": generation,
    }
    others = [c for c in conditions if c.get("type") != kind]
    return sorted([*others, condition], key=lambda c: str(c.get("type")))


def with_ready(
    conditions: list[dict[str, Any]], *, now: datetime, generation: int | None
) -> list[dict[str, Any]]:
    """`conditions` with Ready set from the others: True once the spec is valid, the children applied, the
    gate built and every gateway replica Ready (whether the flag is on is AcceptingOrders' business);
    False with the first unmet condition's reason, or `Deleting` while a teardown drains."""
    ok, reason, message = _ready({c.get("type"): c for c in conditions})
    return set_condition(conditions, ConditionType.READY, ok, reason, message, now=now, generation=generation)


def _ready(by_type: dict[Any, dict[str, Any]]) -> tuple[bool, str, str]:
    draining = by_type.get(ConditionType.DRAINING)
    if draining is not None:
        return False, Reason.DELETING, f"the FlashSale is being deleted: {draining.get('message', '')}"
    for kind in READY_NEEDS:
        found = by_type.get(kind)
        if found is None:
            return False, Reason.NOT_REPORTED, f"{kind} is not reported yet"
        if found.get("status") != "True":
            return (
                False,
                str(found.get("reason") or Reason.NOT_REPORTED),
                f"{kind}: {found.get('message', '')}",
            )
    return (
        True,
        Reason.ALL_READY,
        "the spec is valid, the children applied, the gate built and the gateways Ready",
    )


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
