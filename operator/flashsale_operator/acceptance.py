"""Which spec the sale runs with: the new one, the previous one (a refused change), or none (Failed).

Pure. A new sale (or one that never ran) gets the creation checks too (a start already past). A
change to a running sale that touches what must not change (the SKU; the stock once the gate is
built) is refused as a whole: the sale keeps running with the spec it had, and says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flashsale_operator.isolation import AllowList
from flashsale_operator.spec import FlashSaleSpec
from flashsale_operator.validation import Problem, check_change, check_new, check_spec


@dataclass(frozen=True)
class Verdict:
    spec: FlashSaleSpec | None  # what the sale runs with; None: nothing acceptable (Failed)
    problems: list[Problem] = field(default_factory=list)

    @property
    def refused_change(self) -> bool:
        return self.spec is not None and bool(self.problems)


def judge(
    spec: dict[str, Any],
    *,
    now: datetime,
    previous: FlashSaleSpec | None,
    prewarmed: bool,
    recorded_stock: int | None,
    allowed: AllowList | None = None,
) -> Verdict:
    """`previous`: the spec the sale ran with (None if it never ran); `recorded_stock`: status' total;
    `allowed`: the platform's isolation allow-list (a spec outside it is refused like any invalid one).
    """
    if previous is None and not prewarmed:
        parsed, problems = check_new(spec, now, allowed)
    else:
        parsed, problems = check_spec(spec, allowed)
    if parsed is None or problems:
        return Verdict(previous, problems)  # a running sale keeps its spec; a new one has none
    if previous is not None:
        refused = check_change(previous, parsed, prewarmed=prewarmed)
        if refused:
            return Verdict(previous, refused)
    elif prewarmed and recorded_stock is not None and parsed.stock != recorded_stock:
        # After a restart the previous spec is gone, but the status remembers the stock it was built with.
        kept = parsed.model_copy(update={"stock": recorded_stock})
        problem = Problem(
            "spec.stock", "ImmutableField", f"spec.stock cannot change once prewarmed (kept {recorded_stock})"
        )
        return Verdict(kept, [problem])
    return Verdict(parsed, problems)
