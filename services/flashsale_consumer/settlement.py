"""The settlement loop: a thread of every consumer process, with its own connections.

It lives in the consumer because consumers exist for the sale's whole life (from before the start
until the last order is settled) and scale with it; the gateways may be gone once the sale ends,
and the operator should not hold a sale's data path. Every step is safe with several replicas at
once (SKIP LOCKED in the record, exactly-once scripts in Redis), so no leader is elected.

    every ~1 s   expire due orders (record) -> apply the returns outbox (gate) -> recover lost reservations
    every ~5 s   orders by state, and the reconciliation (docs/settlement.md), as metrics

A failing step is logged and counted, and tried again on the next tick with fresh connections; the
main loop (the orders) never waits on it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import psycopg
import redis

from flashsale_consumer.expiry import expire_due, return_expired
from flashsale_consumer.metrics import SettlementMetrics
from flashsale_consumer.recovery import recover_lost
from flashsale_sale import db
from flashsale_sale.contract import SaleKeys
from flashsale_sale.lag import GroupLag, LagUnknown
from flashsale_sale.reconcile_read import SaleUnknown, reconcile
from flashsale_sale.settings import ConsumerSettings

log = logging.getLogger("flashsale.settlement")

TICK_SECONDS = 1.0
REPORT_EVERY_SECONDS = 5.0
_FAILURES = (psycopg.Error, redis.RedisError, LagUnknown, OSError, SaleUnknown)


class SettlementLoop:
    def __init__(self, settings: ConsumerSettings, metrics: SettlementMetrics, stop: threading.Event) -> None:
        self._settings = settings
        self._metrics = metrics
        self._stop = stop
        self._sale = settings.sale_name
        self._keys = SaleKeys(settings.sale_id)
        self._redis = redis.Redis.from_url(settings.redis_url, socket_timeout=5.0, socket_connect_timeout=5.0)
        self._lag = GroupLag(settings.kafka_bootstrap_servers, settings.topic, settings.group)
        self._conn: psycopg.Connection[Any] | None = None
        self._lagging = True  # until a recovery pass saw the group caught up
        self._last_ok = True
        self._thread = threading.Thread(target=self._run, name="settlement", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float = 10.0) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        next_report = 0.0
        while not self._stop.is_set():
            self._step("expire", self._expire)
            self._step("return", self._return)
            self._step("recover", self._recover)
            if time.monotonic() >= next_report:
                next_report = time.monotonic() + REPORT_EVERY_SECONDS
                self._step("reconcile", self._report)
            self._stop.wait(TICK_SECONDS)
        self._close()
        self._lag.close()

    def _step(self, name: str, step: Any) -> None:
        try:
            step()
        except _FAILURES as error:
            self._metrics.errors(self._sale, name).inc()
            log.warning("settlement step %s failed (next tick retries): %s", name, error)
            self._close()
        except Exception:
            self._metrics.errors(self._sale, name).inc()
            log.exception("settlement step %s failed unexpectedly", name)
            self._close()

    def _expire(self) -> None:
        orders, units = expire_due(self._connect(), self._settings.sale_id)
        if orders:
            self._metrics.expired.inc(orders)
            log.info("expired %d unpaid orders (%d units back in the ledger)", orders, units)

    def _return(self) -> None:
        orders, units = return_expired(self._connect(), self._redis, self._keys)
        if units:
            self._metrics.returned(self._sale, "expired").inc(units)
        if orders:
            log.info("%d expired orders settled in the gate (%d units back on sale)", orders, units)

    def _recover(self) -> None:
        deadline_ms = int(self._settings.lost_reservation_seconds * 1000)
        recovered = recover_lost(
            self._redis, self._connect(), self._lag, self._keys, older_than_ms=deadline_ms
        )
        self._lagging = recovered.lagging
        if recovered.released:
            self._metrics.recovered.inc(recovered.released)
            self._metrics.returned(self._sale, "lost").inc(recovered.units)
            log.warning(
                "gave back %d lost reservations (%d units): no attempt for %.0f s, never ordered",
                recovered.released, recovered.units, self._settings.lost_reservation_seconds,
            )  # fmt: skip
        if recovered.marked:
            log.info("%d pending reservations were orders already: marked ordered", recovered.marked)

    def _report(self) -> None:
        conn = self._connect()
        rows = conn.execute(db.ORDERS_BY_STATE, {"sale": self._settings.sale_id}).fetchall()
        counts = {str(state): int(count) for state, count, _ in rows}
        for state in SettlementMetrics.STATES:
            self._metrics.orders(self._sale, state).set(counts.get(state, 0))
        if self._lagging:
            return  # a burst is being written: no stable reading to be had, keep the last verdict
        verdict = reconcile(self._redis, conn, self._settings.sale_id, attempts=3, thorough=False)
        if verdict is None:
            return
        self._metrics.reconcile_ok.set(1 if verdict.ok else 0)
        self._metrics.unaccounted.set(verdict.unaccounted or 0)
        self._metrics.reconciled_at.set(time.time())
        if verdict.ok != self._last_ok:
            self._last_ok = verdict.ok
            if verdict.ok:
                log.info("reconciliation holds again")
            else:
                log.error("reconciliation failed:\n%s", verdict.report())

    def _connect(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(
                self._settings.database_url.get_secret_value(),
                connect_timeout=10,
                autocommit=True,
                application_name=f"flashsale-settlement-{self._settings.sale_id}"[:63],
            )
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.close()
            except psycopg.Error:
                log.debug("closing a broken connection failed", exc_info=True)
