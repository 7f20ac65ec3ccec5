"""Figures: the median of several runs, its ratio to a baseline where the issue names one, its goal.

A goal is a comparison and a number: `">= 0.35"` on the ratio when the figure has a baseline,
otherwise on the value itself. A missed goal stays in the results, marked `"met": false`, with a
profile of where the time went.
"""

from __future__ import annotations

import math
import operator
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

_COMPARE: Final[dict[str, Callable[[float, float], bool]]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}


@dataclass(frozen=True)
class Goal:
    comparison: str  # one of _COMPARE
    bound: float

    def __str__(self) -> str:
        return f"{self.comparison} {self.bound:g}"

    def met(self, measured: float) -> bool:
        return _COMPARE[self.comparison](measured, self.bound)


@dataclass
class Figure:
    """One named number of the results, with the runs behind it."""

    name: str
    unit: str
    runs: list[float] = field(default_factory=list)
    goal: Goal | None = None
    baseline: str | None = None  # another figure's name
    ratio_of: str | None = None  # how the ratio reads, e.g. "buy_rps / ceiling_rps"
    ratio: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def value(self) -> float:
        return statistics.median(self.runs) if self.runs else 0.0

    @property
    def judged(self) -> float:
        """What the goal applies to: the ratio when there is a baseline, else the value."""
        return self.ratio if self.baseline is not None and self.ratio is not None else self.value

    @property
    def met(self) -> bool | None:
        return None if self.goal is None else self.goal.met(self.judged)

    def relate(self, baseline: Figure, *, inverse: bool = False) -> None:
        """Ratio value/baseline, or baseline/value when `inverse` (the candidate is the baseline)."""
        self.baseline = baseline.name
        numerator, denominator = (baseline, self) if inverse else (self, baseline)
        self.ratio_of = f"{numerator.name} / {denominator.name}"
        self.ratio = numerator.value / denominator.value if denominator.value else None

    def as_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"value": _round(self.value), "unit": self.unit}
        if self.baseline is not None:
            entry["baseline"] = self.baseline
            entry["ratio"] = None if self.ratio is None else round(self.ratio, 3)
            entry["ratio_of"] = self.ratio_of
        if self.goal is not None:
            entry["goal"] = str(self.goal)
            entry["met"] = self.met
        entry["runs"] = [_round(run) for run in self.runs]
        entry.update(self.details)
        return entry


def _round(value: float) -> float:
    return round(value, 1) if abs(value) < 1000 else float(round(value))


def median_of(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between the closest ranks (numpy's default)."""
    if not values:
        raise ValueError("no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
