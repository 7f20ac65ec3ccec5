"""The consumer's metrics (all labelled by sale) and the tiny HTTP server for /metrics and /healthz.

A registry of its own (plus the process collector for RSS and CPU), so tests can build several
side by side. /healthz answers 200 while the main loop has ticked recently: a consumer stuck
somewhere is restarted by its liveness probe, a busy one is not (the loop ticks at least every
batch timeout, and every retry while the database is away).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, make_wsgi_app

STALE_AFTER_SECONDS = 60.0
_BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


class ConsumerMetrics:
    def __init__(self, sale: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = ["sale"]

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, labels, registry=self.registry)

        self.orders = counter(
            "flashsale_consumer_orders", "Orders written (reservations that became orders)."
        )
        self.order_units = counter("flashsale_consumer_order_units", "Units taken from the ledger by orders.")
        self.redelivered = counter(
            "flashsale_consumer_redelivered", "Reservations received again that were orders already."
        )
        self.rejected = counter(
            "flashsale_consumer_rejected",
            "Reservations the database refused (a user's second live order); they stay pending.",
        )
        self.poison = counter(
            "flashsale_consumer_poison_messages", "Records that are not reservations of this sale."
        )
        self.db_errors = counter("flashsale_consumer_db_errors", "Failed database writes (retried).")
        self.redis_errors = counter(
            "flashsale_consumer_redis_errors", "Failed Redis calls (claims retried, ordered marks skipped)."
        )
        self.given_back = counter(
            "flashsale_consumer_given_back_skipped",
            "Reservations not written: their units had gone back to the gate (their ids are settled).",
        )
        self.commit_errors = counter("flashsale_consumer_commit_errors", "Failed Kafka offset commits.")
        self.batch_size = Histogram(
            "flashsale_consumer_batch_size", "Messages per batch.", labels, registry=self.registry,
            buckets=_BATCH_BUCKETS,
        )  # fmt: skip
        self.batch_seconds = Histogram(
            "flashsale_consumer_batch_seconds", "Time to write, mark and commit one batch.", labels,
            registry=self.registry,
        )  # fmt: skip
        self.lag = Gauge(
            "flashsale_consumer_lag_messages",
            "Messages behind the partition's end (high watermark - position), per assigned partition.",
            [*labels, "partition"],
            registry=self.registry,
        )
        self.assigned = Gauge(
            "flashsale_consumer_assigned_partitions", "Partitions assigned to this process.", labels,
            registry=self.registry,
        )  # fmt: skip
        self.remaining = Gauge(
            "flashsale_consumer_ledger_remaining", "The ledger's remaining stock after the last batch.",
            labels, registry=self.registry,
        )  # fmt: skip
        ProcessCollector(registry=self.registry)
        self.sale = sale
        self.settlement = SettlementMetrics(sale, self.registry)
        for metric in (self.orders, self.order_units, self.redelivered, self.rejected, self.poison,
                       self.db_errors, self.redis_errors, self.commit_errors, self.batch_size,
                       self.batch_seconds, self.assigned, self.given_back):  # fmt: skip
            metric.labels(sale)  # present from the start: a rate over "no series" is no answer
        self._lag_partitions: set[int] = set()
        self._heartbeat = time.monotonic()

    def beat(self) -> None:
        self._heartbeat = time.monotonic()

    def healthy(self) -> bool:
        return time.monotonic() - self._heartbeat < STALE_AFTER_SECONDS

    def set_lag(self, lag_by_partition: dict[int, int]) -> None:
        """Replaces the per-partition lag: partitions no longer assigned disappear."""
        for partition in self._lag_partitions - lag_by_partition.keys():
            self.lag.remove(self.sale, str(partition))
        for partition, lag in lag_by_partition.items():
            self.lag.labels(self.sale, str(partition)).set(lag)
        self._lag_partitions = set(lag_by_partition)


class SettlementMetrics:
    """The settlement loop's: orders by state, stock returned by cause, recoveries, the reconciliation.

    `flashsale_stock_returned_units_total{cause}`: only the settlement loop gives stock back (expired
    orders, lost reservations); the gateways' former cause "publish_failed" is gone with their release.
    """

    RETURN_CAUSES = ("expired", "lost")
    STATES = ("ordered", "paid", "expired")
    STEPS = ("expire", "return", "recover", "reconcile")

    def __init__(self, sale: str, registry: CollectorRegistry) -> None:
        labels = ["sale"]
        self.orders = Gauge(
            "flashsale_orders", "The sale's orders by state, from the record (every ~5 s).",
            [*labels, "state"], registry=registry,
        ).labels  # fmt: skip
        self.returned = Counter(
            "flashsale_stock_returned_units", "Units given back to the gate, by cause.",
            [*labels, "cause"], registry=registry,
        ).labels  # fmt: skip
        self.expired = Counter(
            "flashsale_settlement_expired_orders", "Unpaid orders this process expired.", labels,
            registry=registry,
        ).labels(sale)  # fmt: skip
        self.recovered = Counter(
            "flashsale_settlement_recovered_reservations",
            "Lost reservations (pending, never ordered) this process gave back.", labels, registry=registry,
        ).labels(sale)  # fmt: skip
        self.errors = Counter(
            "flashsale_settlement_errors", "Settlement steps that failed (retried on the next tick).",
            [*labels, "step"], registry=registry,
        ).labels  # fmt: skip
        self.reconcile_ok = Gauge(
            "flashsale_reconcile_ok", "1 when the last stable reconciliation held, 0 when it did not.",
            labels, registry=registry,
        ).labels(sale)  # fmt: skip
        self.unaccounted = Gauge(
            "flashsale_reconcile_unaccounted_units",
            "Initial stock minus every unit counted (gate, pending, live orders, expired not returned).",
            labels, registry=registry,
        ).labels(sale)  # fmt: skip
        self.reconciled_at = Gauge(
            "flashsale_reconcile_checked_timestamp_seconds", "When the last stable reconciliation ran.",
            labels, registry=registry,
        ).labels(sale)  # fmt: skip
        for state in self.STATES:
            self.orders(sale, state)
        for cause in self.RETURN_CAUSES:
            self.returned(sale, cause)
        for step in self.STEPS:
            self.errors(sale, step)


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would drown the consumer's own log."""


def wsgi_app(metrics: ConsumerMetrics) -> Callable[..., Iterable[bytes]]:
    exposition = make_wsgi_app(metrics.registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            ok = metrics.healthy()
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"ok\n" if ok else b"stalled\n"]
        return exposition(environ, start_response)  # type: ignore[no-any-return]

    return app


def serve(metrics: ConsumerMetrics, host: str, port: int) -> WSGIServer:
    """Serves /metrics and /healthz from a daemon thread; `shutdown()` stops it."""
    server = make_server(host, port, wsgi_app(metrics), _ThreadingServer, _QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
