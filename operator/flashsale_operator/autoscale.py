"""How many consumers a sale needs, from its Kafka backlog: pure functions, the loop is in `scaling.py`.

    wanted   = ceil(lag / lagThreshold), clamped to [minReplicas, min(maxReplicas, partitions)]
    up       at once (a flash sale's backlog is built in seconds)
    down     only to the highest `wanted` seen during the last scaleDownStabilizationSeconds (and
             never before the loop has watched that long: a restarted operator waits a window)
    error    nothing changes; the last decision stands and the reason says why

Where KEDA + the HPA disappoint (../shared/notes/lag-autoscaling.md), this does not: the partition
count is a hard ceiling (no off-by-one, no tolerance leaving it one short), an unknown lag is never
read as zero, and a partition the group never committed on counts every message still in the log
(the consumers start from the earliest offset, so that is exactly their backlog).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class ScaleReason(StrEnum):
    SCALED_UP = "ScaledUp"
    SCALED_DOWN = "ScaledDown"
    STABILIZING = "Stabilizing"  # less is needed, but not for the whole window yet
    STEADY = "Steady"
    OUT_OF_BOUNDS = "OutOfBounds"  # replicas outside [min, ceiling] (changed by hand): put back
    LAG_UNKNOWN = "LagUnknown"


@dataclass(frozen=True)
class ScalePolicy:
    min_replicas: int
    max_replicas: int | None
    lag_threshold: int
    window_seconds: float
    partitions: int

    @property
    def ceiling(self) -> int:
        """Never more consumers than partitions: an extra one would own nothing and only rebalance."""
        cap = self.partitions if self.max_replicas is None else min(self.max_replicas, self.partitions)
        return max(cap, min(self.min_replicas, self.partitions), 1)

    @property
    def floor(self) -> int:
        return min(self.min_replicas, self.ceiling)


@dataclass(frozen=True)
class Seen:
    """One tick's recommendation, kept for the scale-down window."""

    at: float  # seconds (monotonic)
    wanted: int


@dataclass(frozen=True)
class ScaleDecision:
    replicas: int
    wanted: int
    reason: ScaleReason
    message: str

    def changes(self, current: int) -> bool:
        return self.replicas != current


def wanted_replicas(lag: int, policy: ScalePolicy) -> int:
    return min(max(math.ceil(max(lag, 0) / policy.lag_threshold), policy.floor), policy.ceiling)


def remember(history: tuple[Seen, ...], seen: Seen, window_seconds: float) -> tuple[Seen, ...]:
    """The recommendations still inside the window, plus the new one."""
    return (*(s for s in history if s.at >= seen.at - window_seconds), seen)


def decide(
    current: int, lag: int, history: tuple[Seen, ...], policy: ScalePolicy, *, watched_seconds: float
) -> ScaleDecision:
    """`history` holds this tick's recommendation last (see `remember`); `watched_seconds`: how long
    this loop has been watching (a restarted operator sees a whole window before it scales down)."""
    wanted = wanted_replicas(lag, policy)
    if current > policy.ceiling or current < policy.floor:
        target = min(max(current, policy.floor), policy.ceiling)
        bounds = f"[{policy.floor}, {policy.ceiling}]"
        message = f"{current} replicas is outside {bounds}: set to {target}"
        return ScaleDecision(target, wanted, ScaleReason.OUT_OF_BOUNDS, message)
    if wanted > current:
        cap = " (the partition count)" if wanted == policy.partitions else ""
        message = f"lag {lag} > {current} x {policy.lag_threshold}: {wanted} replicas{cap}"
        return ScaleDecision(wanted, wanted, ScaleReason.SCALED_UP, message)
    highest = max((s.wanted for s in history), default=wanted)
    if highest < current and watched_seconds >= policy.window_seconds:
        window = f"{policy.window_seconds:g} s"
        message = f"lag {lag}: at most {highest} replicas needed for {window}"
        return ScaleDecision(highest, wanted, ScaleReason.SCALED_DOWN, message)
    if wanted < current:
        window = f"{policy.window_seconds:g} s"
        message = f"lag {lag} needs {wanted}; waiting for {window} without a higher need (seen {highest})"
        return ScaleDecision(current, wanted, ScaleReason.STABILIZING, message)
    return ScaleDecision(current, wanted, ScaleReason.STEADY, f"lag {lag}: {current} replicas")
