"""The operator's Prometheus metrics (served on its metrics port next to kopf's liveness endpoint)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from flashsale_operator.spec import Phase

RECONCILES = Counter(
    "flashsale_operator_reconciles_total", "Reconciles of a FlashSale's children, by result", ["result"]
)
ERRORS = Counter("flashsale_operator_errors_total", "Errors, by the step that failed", ["step"])
FLAG_SKEW = Histogram(
    "flashsale_operator_flag_flip_skew_seconds",
    "How late the start flag was set after startsAt (Redis' clock)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
)
TRANSITIONS = Counter(
    "flashsale_operator_phase_transitions_total", "Phase changes recorded in status, by new phase", ["phase"]
)
CONSUMER_LAG = Gauge(
    "flashsale_operator_consumer_lag", "The sale's consumer group lag (messages)", ["namespace", "sale"]
)
CONSUMER_REPLICAS = Gauge(
    "flashsale_operator_consumer_replicas", "Consumer replicas the scaling loop set", ["namespace", "sale"]
)
CONSUMER_DESIRED = Gauge(
    "flashsale_operator_consumer_desired_replicas", "Consumers the lag asks for, before stabilization",
    ["namespace", "sale"],
)  # fmt: skip
SCALES = Counter("flashsale_operator_scale_changes_total", "Consumer replica changes, by reason", ["reason"])
DRAIN_UNWRITTEN = Gauge(
    "flashsale_operator_drain_unwritten",
    "Messages of a deleted sale not written to the record yet (-1: unknown); the teardown waits for 0",
    ["namespace", "sale"],
)
DRAIN_SECONDS = Gauge(
    "flashsale_operator_drain_seconds", "How long a deleted sale's teardown has been draining",
    ["namespace", "sale"],
)  # fmt: skip
SALES = Gauge("flashsale_operator_sales", "FlashSales this operator runs, by phase", ["phase"])

_phases: dict[str, Phase] = {}


def sale_phase(sale: str, phase: Phase | None) -> None:
    """Keeps the sales-by-phase gauge; None forgets the sale (deleted)."""
    if phase is None:
        _phases.pop(sale, None)
    else:
        _phases[sale] = phase
    for each in Phase:
        SALES.labels(each.value).set(sum(1 for p in _phases.values() if p is each))
