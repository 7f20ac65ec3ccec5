"""When KEDA's Kafka scaler + the HPA, at their documented defaults, would first raise the consumers.

Computed, not run: KEDA is not installed here. Pure functions; `bench/operator_scaling.py` feeds them
the backlogs it measured (when each appeared, how large) and reports the percentiles beside the
operator's measured delays.

The path of a 1 -> N scale-up (../shared/notes/lag-autoscaling.md; keda.sh "Scaling Deployments":
`pollingInterval`, `useCachedMetrics`, "Caching Metrics", "Activating and Scaling thresholds";
kubernetes.io "Horizontal Pod Autoscaling": the algorithm, tolerance, default behavior):

- With minReplicaCount >= 1 the scaler is always active: KEDA's own loop (every `pollingInterval`,
  default 30 s) only decides 0 <-> 1. 1 -> N is the HPA's, with an AverageValue target of
  lagThreshold on the total lag (capped at partitions x lagThreshold while allowIdleConsumers is
  false).
- The HPA controller syncs every 15 s (`--horizontal-pod-autoscaler-sync-period`) and asks KEDA's
  metrics server for the value. By default (`useCachedMetrics: false`) the metrics server asks the
  scaler there and then, so the HPA sees the lag as of its sync. With `useCachedMetrics: true` it
  answers from the last poll, so the backlog shows only at the first sync after the first poll after it.
- At that sync: ratio = metric / (lagThreshold x current); inside the 10% tolerance nothing happens;
  otherwise desired = ceil(metric / lagThreshold) within [min, max], scale-up limited to
  max(+4 pods, +100%) per 15 s, no scale-up stabilization: the scale subresource is written at once.

Each clock runs at its own phase, unknown to the backlog: a draw picks both phases uniformly, and
every measured backlog instant is played against them (same instants, same lags as the operator's runs).
Processing times (the scaler's Kafka queries, the HPA's write) count as zero: in KEDA's favour.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from bench.figures import percentile


@dataclass(frozen=True)
class KedaHpa:
    """KEDA's and the HPA's defaults."""

    polling_interval_s: float = 30.0  # ScaledObject spec.pollingInterval
    sync_period_s: float = 15.0  # kube-controller-manager --horizontal-pod-autoscaler-sync-period
    use_cached_metrics: bool = False  # trigger default: the metrics server asks the scaler per HPA request
    tolerance: float = 0.1  # --horizontal-pod-autoscaler-tolerance
    scale_up_pods: int = 4  # behavior.scaleUp: Pods 4 per 15 s ...
    scale_up_percent: int = 100  # ... or Percent 100 per 15 s, whichever allows more (selectPolicy Max)

    def describe(self) -> str:
        metrics = (
            f"from the last poll (useCachedMetrics: true; pollingInterval {self.polling_interval_s:g} s)"
            if self.use_cached_metrics
            else "asked of the scaler at each HPA sync (useCachedMetrics: false, the default)"
        )
        return (
            f"HPA sync every {self.sync_period_s:g} s, the lag {metrics}; tolerance "
            f"{self.tolerance:g}; scale-up max(+{self.scale_up_pods} pods, +{self.scale_up_percent}%) "
            "per 15 s, no scale-up stabilization; clock phases uniformly random"
        )


@dataclass(frozen=True)
class Target:
    """What the ScaledObject would say for the sale: the same threshold and bounds as spec.consumers."""

    lag_threshold: int
    partitions: int
    min_replicas: int
    max_replicas: int


@dataclass(frozen=True)
class Backlog:
    """One measured backlog: when it existed (seconds, any clock), how large, over how many replicas."""

    at: float
    lag: int
    replicas: int = 1


def scaler_metric(lag: int, target: Target) -> int:
    """The Kafka scaler's total lag: capped at partitions x lagThreshold (allowIdleConsumers: false)."""
    return min(max(lag, 0), target.partitions * target.lag_threshold)


def hpa_replicas(current: int, metric: float, target: Target, model: KedaHpa) -> int:
    """The HPA's next replica count for an AverageValue target of lagThreshold, after one sync."""
    if current < 1:
        raise ValueError("the HPA scales 1 <-> N; 0 <-> 1 is KEDA's activation")
    ratio = metric / (target.lag_threshold * current)
    if abs(ratio - 1.0) <= model.tolerance:
        return current
    desired = min(max(math.ceil(metric / target.lag_threshold), target.min_replicas), target.max_replicas)
    if desired > current:
        by_pods = current + model.scale_up_pods
        by_percent = math.ceil(current * (1 + model.scale_up_percent / 100))
        desired = min(desired, max(by_pods, by_percent))
    return desired


def next_tick(at: float, phase: float, period: float) -> float:
    """The first instant `phase + k x period` (k an integer) at or after `at`."""
    return phase + math.ceil((at - phase) / period) * period


def first_rise_delay(
    backlog: Backlog, target: Target, model: KedaHpa, *, poll_phase: float, sync_phase: float
) -> float | None:
    """Seconds from the backlog to the HPA's first write of more replicas; None if it never would
    (the lag stays as it is: the consumers are held back)."""
    wanted = hpa_replicas(backlog.replicas, scaler_metric(backlog.lag, target), target, model)
    if wanted <= backlog.replicas:
        return None
    visible = (
        next_tick(backlog.at, poll_phase, model.polling_interval_s)
        if model.use_cached_metrics
        else backlog.at
    )
    return next_tick(visible, sync_phase, model.sync_period_s) - backlog.at


@dataclass(frozen=True)
class Simulated:
    delays: list[float]  # one per (draw, backlog) that scales up
    never: int  # (draw, backlog) pairs that would not scale up at all
    draws: int
    seed: int

    def quantile(self, q: float) -> float:
        return percentile(self.delays, q)


def simulate(
    backlogs: Sequence[Backlog], target: Target, model: KedaHpa, *, draws: int = 10_000, seed: int = 10
) -> Simulated:
    """A seeded Monte Carlo: each draw fixes the poll's and the sync's phases, then plays every backlog."""
    if not backlogs:
        raise ValueError("no backlog to play")
    rng = random.Random(seed)
    delays: list[float] = []
    never = 0
    for _ in range(draws):
        poll_phase = rng.uniform(0, model.polling_interval_s)
        sync_phase = rng.uniform(0, model.sync_period_s)
        for backlog in backlogs:
            delay = first_rise_delay(backlog, target, model, poll_phase=poll_phase, sync_phase=sync_phase)
            if delay is None:
                never += 1
            else:
                delays.append(delay)
    return Simulated(delays, never, draws, seed)


def analytic_quantile(model: KedaHpa, q: float) -> float:
    """The delay's q-th percentile (0..100) in closed form, for a backlog that does scale up.

    Uncached: the wait for the next sync, uniform on [0, sync). Cached: the wait for the next poll
    plus the wait from there to the next sync, independent uniforms on [0, poll) and [0, sync): their
    sum's distribution is a trapezoid.
    """
    p = q / 100
    if not 0 <= p <= 1:
        raise ValueError(f"percentile {q} outside 0..100")
    if not model.use_cached_metrics:
        return p * model.sync_period_s
    a, b = sorted((model.polling_interval_s, model.sync_period_s), reverse=True)  # a >= b
    if p <= b / (2 * a):
        return math.sqrt(2 * a * b * p)
    if p <= 1 - b / (2 * a):
        return a * p + b / 2
    return a + b - math.sqrt(2 * a * b * (1 - p))
