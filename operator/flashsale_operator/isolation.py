"""What a tenant's FlashSale may ask for in `spec.isolation`: the platform's allow-list (pure).

A sale chooses where its pods run, and a sale's namespace belongs to a tenant, not to the platform
team: without a check, a FlashSale could select the shop's nodes, tolerate their taints or run at a
priority that preempts the shop. The operator's configuration therefore lists what sales may ask
for, and a spec that asks for anything else is refused (validation.check_isolation):

- `nodeSelector`: allowed if it contains one of the allowed label sets (it may add labels: more
  labels only narrow the nodes further, within an allowed pool);
- `tolerations`: each one must be one of the allowed tolerations (a toleration only widens where a
  pod may go, so each must be allowed as it is; an omitted `operator` is `Equal`, an omitted value or
  effect is empty - an empty effect tolerates every effect, so it is not the same toleration);
- `priorityClassName`: one of the allowed names.

A field the sale leaves out (or empty) falls back to the platform's default isolation, which is always
allowed. Unset, each list is exactly that default (pool=flashsale, the dedicated=flashsale:NoSchedule
taint, flashsale-sale).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flashsale_operator.config import OperatorConfig


@dataclass(frozen=True)
class AllowList:
    node_selectors: tuple[Mapping[str, str], ...]
    tolerations: tuple[Mapping[str, Any], ...]
    priority_class_names: frozenset[str]


def allow_list(config: OperatorConfig) -> AllowList:
    """The configured allow-list, with the platform's default isolation always in it."""
    selectors = [*(config.allowed_node_selectors or []), config.default_node_selector]
    tolerations = [*(config.allowed_tolerations or []), *config.default_tolerations]
    names = {*(config.allowed_priority_class_names or []), config.default_priority_class_name}
    return AllowList(
        node_selectors=tuple(_unique([dict(s) for s in selectors if s])),
        tolerations=tuple(_unique([dict(t) for t in tolerations])),
        priority_class_names=frozenset(n for n in names if n),
    )


def _unique(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kept: list[dict[str, Any]] = []
    for item in items:
        if item not in kept:
            kept.append(item)
    return kept


def node_selector_allowed(selector: Mapping[str, str], allowed: AllowList) -> bool:
    return any(all(selector.get(k) == v for k, v in labels.items()) for labels in allowed.node_selectors)


def toleration_allowed(toleration: Mapping[str, Any], allowed: AllowList) -> bool:
    return _normal(toleration) in {_normal(t) for t in allowed.tolerations}


def priority_class_allowed(name: str, allowed: AllowList) -> bool:
    return name in allowed.priority_class_names


def disallowed_tolerations(
    tolerations: Sequence[Mapping[str, Any]], allowed: AllowList
) -> list[Mapping[str, Any]]:
    return [t for t in tolerations if not toleration_allowed(t, allowed)]


def _normal(toleration: Mapping[str, Any]) -> tuple[str, str, str, str, int | None]:
    """A toleration as the scheduler reads it: the omitted fields with their meaning spelled out."""
    seconds = toleration.get("tolerationSeconds")
    return (
        str(toleration.get("key") or ""),
        str(toleration.get("operator") or "Equal"),
        str(toleration.get("value") or ""),
        str(toleration.get("effect") or ""),
        None if seconds is None else int(seconds),
    )
