"""What the CRD's schema cannot say: pure checks that turn a spec into a model or into Problems.

The API server already refused what the schema and its CEL rules express; the same rules are
checked here too, so a spec read without the server (a unit test, a webhook, an older CRD still
installed) gets the same verdict. Each Problem names its field by JSON path and carries a CamelCase
reason, ready for a condition and an Event.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from pydantic import ValidationError

from flashsale_operator import isolation as allowed_isolation
from flashsale_operator.isolation import AllowList
from flashsale_operator.spec import FlashSaleSpec, Isolation, parse_spec

MAX_SALE_DURATION: Final = timedelta(days=31)
CLOCK_SKEW_GRACE: Final = timedelta(seconds=5)  # a start "now" from a client whose clock runs behind

# pydantic's error types, grouped into the reasons a platform team reads.
_REASONS: Final = {
    "missing": "MissingField",
    "greater_than": "OutOfRange",
    "greater_than_equal": "OutOfRange",
    "less_than": "OutOfRange",
    "less_than_equal": "OutOfRange",
    "finite_number": "OutOfRange",
    "quantity_range": "OutOfRange",
    "string_too_short": "InvalidLength",
    "string_too_long": "InvalidLength",
    "too_short": "InvalidLength",
    "too_long": "InvalidLength",
    "string_pattern_mismatch": "InvalidFormat",
    "datetime_format": "InvalidFormat",
    "datetime_parsing": "InvalidFormat",
    "datetime_from_date_parsing": "InvalidFormat",
    "timezone_aware": "InvalidFormat",
    "literal_error": "NotSupported",
    "enum": "NotSupported",
}


@dataclass(frozen=True)
class Problem:
    field: str  # the JSON path of the field, e.g. "spec.schedule.startsAt"
    reason: str  # CamelCase, e.g. "StartsInThePast", "InvalidField", "ImmutableField"
    message: str  # a sentence naming the field


def check_spec(
    spec: dict[str, Any], allowed: AllowList | None = None
) -> tuple[FlashSaleSpec | None, list[Problem]]:
    """The model, or None and at least one Problem: the schema's rules, then those between fields,
    then (given the platform's allow-list) the isolation it asks for."""
    if not isinstance(spec, Mapping):
        return None, [Problem("spec", "InvalidType", "spec must be an object")]
    try:
        parsed = parse_spec(spec)
    except ValidationError as error:
        return None, [_from_pydantic(e) for e in error.errors(include_url=False, include_input=False)]
    problems = list(_between_fields(parsed))
    if allowed is not None:
        problems += check_isolation(parsed.isolation, allowed)
    return (None, problems) if problems else (parsed, [])


def check_isolation(isolation: Isolation, allowed: AllowList) -> list[Problem]:
    """What the sale asks for in spec.isolation and the platform does not allow (isolation.py)."""
    problems = []
    selector = isolation.node_selector
    if selector and not allowed_isolation.node_selector_allowed(selector, allowed):
        permitted = " or ".join(_labels(s) for s in allowed.node_selectors)
        problems.append(
            Problem(
                "spec.isolation.nodeSelector",
                "NodeSelectorNotAllowed",
                f"spec.isolation.nodeSelector {_labels(selector)} is not allowed by the platform "
                f"(it must contain {permitted})",
            )
        )
    for toleration in allowed_isolation.disallowed_tolerations(isolation.tolerations or [], allowed):
        problems.append(
            Problem(
                "spec.isolation.tolerations",
                "TolerationNotAllowed",
                f"spec.isolation.tolerations {_toleration(toleration)} is not allowed by the platform "
                f"(allowed: {', '.join(_toleration(t) for t in allowed.tolerations)})",
            )
        )
    name = isolation.priority_class_name
    if name and not allowed_isolation.priority_class_allowed(name, allowed):
        problems.append(
            Problem(
                "spec.isolation.priorityClassName",
                "PriorityClassNotAllowed",
                f"spec.isolation.priorityClassName {name!r} is not allowed by the platform "
                f"(allowed: {', '.join(sorted(allowed.priority_class_names))})",
            )
        )
    return problems


def check_new(
    spec: dict[str, Any], now: datetime, allowed: AllowList | None = None
) -> tuple[FlashSaleSpec | None, list[Problem]]:
    """check_spec, plus what must hold when the sale is created: its window is not already past.

    `now` is best the object's metadata.creationTimestamp: an operator that starts late then does
    not refuse a sale that was fine when it was applied.
    """
    parsed, problems = check_spec(spec, allowed)
    if parsed is None:
        return None, problems
    problems = []
    if parsed.starts_at < now - CLOCK_SKEW_GRACE:
        problems.append(
            Problem(
                "spec.schedule.startsAt",
                "StartsInThePast",
                f"spec.schedule.startsAt ({parsed.starts_at.isoformat()}) is already past",
            )
        )
    if parsed.ends_at <= now:
        problems.append(
            Problem(
                "spec.schedule.endsAt",
                "EndsInThePast",
                f"spec.schedule.endsAt ({parsed.ends_at.isoformat()}) is already past",
            )
        )
    return (None, problems) if problems else (parsed, [])


def check_change(old: FlashSaleSpec, new: FlashSaleSpec, *, prewarmed: bool) -> list[Problem]:
    """What a running sale may not change: its SKU, its queue's mode, its stock once the gate holds it,
    and its partitions, which may only grow.
    """
    problems = []
    if new.product.sku != old.product.sku:
        problems.append(
            Problem(
                "spec.product.sku",
                "ImmutableField",
                f"spec.product.sku is immutable (it was {old.product.sku!r})",
            )
        )
    if prewarmed and new.stock != old.stock:
        problems.append(
            Problem(
                "spec.stock",
                "ImmutableField",
                f"spec.stock cannot change once the sale is prewarmed (it was {old.stock})",
            )
        )
    if new.queue.mode != old.queue.mode:
        problems.append(
            Problem(
                "spec.queue.mode",
                "ImmutableField",
                f"spec.queue.mode is immutable (it was {old.queue.mode!r}): a sale's queue cannot move",
            )
        )
    if new.queue.partitions < old.queue.partitions:
        problems.append(
            Problem(
                "spec.queue.partitions",
                "PartitionsCannotShrink",
                f"spec.queue.partitions cannot go below {old.queue.partitions}: Kafka cannot drop partitions",
            )
        )
    return problems


def _between_fields(spec: FlashSaleSpec) -> Iterator[Problem]:
    # The CRD's CEL rules say the same; they are repeated for specs that never met the server.
    if spec.ends_at <= spec.starts_at:
        yield Problem(
            "spec.schedule.endsAt",
            "EndsBeforeStart",
            "spec.schedule.endsAt must be after spec.schedule.startsAt",
        )
    elif spec.ends_at - spec.starts_at > MAX_SALE_DURATION:
        yield Problem(
            "spec.schedule.endsAt",
            "SaleTooLong",
            f"spec.schedule.endsAt must be at most {MAX_SALE_DURATION.days} days after startsAt",
        )
    if spec.per_user_limit > spec.stock:
        yield Problem(
            "spec.perUserLimit",
            "LimitAboveStock",
            f"spec.perUserLimit ({spec.per_user_limit}) must not exceed spec.stock ({spec.stock})",
        )
    consumers, partitions = spec.consumers, spec.queue.partitions
    if consumers.max_replicas is not None and consumers.max_replicas < consumers.min_replicas:
        yield Problem(
            "spec.consumers.maxReplicas",
            "MaxReplicasBelowMinReplicas",
            f"spec.consumers.maxReplicas ({consumers.max_replicas}) must not be below "
            f"spec.consumers.minReplicas ({consumers.min_replicas})",
        )
    if consumers.min_replicas > partitions:
        yield Problem(
            "spec.consumers.minReplicas",
            "MoreConsumersThanPartitions",
            f"spec.consumers.minReplicas ({consumers.min_replicas}) must not exceed spec.queue.partitions "
            f"({partitions}): a consumer without a partition idles",
        )


def _labels(labels: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"


def _toleration(toleration: Mapping[str, Any]) -> str:
    """`key=value:Effect` (kubectl taint's spelling), `key:Effect` for Exists, `*` for an empty key."""
    key = toleration.get("key") or "*"
    value = "" if toleration.get("operator") == "Exists" else f"={toleration.get('value') or ''}"
    effect = toleration.get("effect") or "<every effect>"
    seconds = toleration.get("tolerationSeconds")
    return f"{key}{value}:{effect}" + ("" if seconds is None else f" for {seconds}s")


def _from_pydantic(error: Mapping[str, Any]) -> Problem:
    path = _json_path(error["loc"])
    kind = error["type"]
    reason = _REASONS.get(kind) or ("InvalidType" if kind.endswith("_type") else "InvalidField")
    return Problem(path, reason, f"{path}: {error['msg']}")


def _json_path(loc: Sequence[int | str]) -> str:
    path = "spec"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path
