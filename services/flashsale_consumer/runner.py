"""`flashsale consumer`: the loop that turns one sale's reservations into orders.

Per batch, in this order and never another: decode the messages' records (poison is skipped);
for every FLASHSALE_BATCH_SIZE reservations of them, claim them in the gate (ONE Redis call: those
given back are skipped, the others can no longer be given back), write them in ONE database
transaction and remove the ordered ones from the gate's pending hash (best effort); then commit
the Kafka offsets synchronously. A crash anywhere before the offset commit means a
redelivery, which the unique reservation id makes harmless; a commit of offsets before the
database commit could lose an order, so it never happens. The settlement loop (settlement.py) runs
beside it on a thread of its own.

Exit codes: 0 stopped by SIGTERM/SIGINT after finishing its batch; 1 an unexpected failure;
2 invalid settings (settings.load); 3 the schema is missing or older (run `flashsale migrate`);
4 the oversell alarm (the ledger would go below zero: stop the line, a human looks).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from types import FrameType

import psycopg
import redis
from confluent_kafka import Message

from flashsale_consumer.batch import decode_batch, next_offsets
from flashsale_consumer.metrics import ConsumerMetrics, serve
from flashsale_consumer.pending import PendingMarker
from flashsale_consumer.settlement import SettlementLoop
from flashsale_consumer.source import ReservationSource
from flashsale_consumer.store import (
    OrderStore,
    OversellError,
    PermanentDatabaseError,
    SchemaError,
    WriteResult,
)
from flashsale_sale.contract import ReservationMessage, SaleKeys
from flashsale_sale.settings import MAX_PER_USER_LIMIT, ConsumerSettings

log = logging.getLogger("flashsale.consumer")

EXIT_OK, EXIT_FAILED, EXIT_SCHEMA, EXIT_OVERSELL = 0, 1, 3, 4
LAG_EVERY_SECONDS = 5.0
_RETRY_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)


class _Stop:
    """Set by SIGTERM/SIGINT; the loop finishes its batch, commits, and leaves the group."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, _: FrameType | None) -> None:
        log.info("%s: stopping after the current batch", signal.Signals(signum).name)
        self.event.set()


def run(settings: ConsumerSettings) -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stop = _Stop()
    stop.install()
    metrics = ConsumerMetrics(settings.sale_name)
    try:
        server = serve(metrics, settings.bind_host, settings.metrics_port)
    except OSError as error:
        log.error("cannot serve metrics on %s:%d: %s", settings.bind_host, settings.metrics_port, error)
        return EXIT_FAILED
    store = OrderStore(settings)
    try:
        return _consume(settings, metrics, store, stop.event)
    finally:
        store.close()
        server.shutdown()
        server.server_close()


def _consume(
    settings: ConsumerSettings, metrics: ConsumerMetrics, store: OrderStore, stop: threading.Event
) -> int:
    try:
        store.open()
    except SchemaError as error:
        log.error("%s", error)
        return EXIT_SCHEMA
    except psycopg.Error as error:
        log.error("cannot reach the database: %s", error)
        return EXIT_FAILED
    source = ReservationSource(settings, metrics)
    settling = threading.Event()
    settlement = SettlementLoop(settings, metrics.settlement, settling)
    settlement.start()
    try:
        return _Loop(settings, metrics, store, source, stop).run()
    except Exception:
        log.exception("consumer failed")
        return EXIT_FAILED
    finally:
        settling.set()
        source.close()
        settlement.join()


class _Loop:
    def __init__(
        self,
        settings: ConsumerSettings,
        metrics: ConsumerMetrics,
        store: OrderStore,
        source: ReservationSource,
        stop: threading.Event,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._store = store
        self._source = source
        self._stop = stop
        self._pending = PendingMarker.from_url(
            settings.redis_url,
            SaleKeys(settings.sale_id),
            metrics.redis_errors.labels(settings.sale_name).inc,
        )
        self._next_lag = 0.0

    def run(self) -> int:
        log.info(
            "consuming %s as group %s for sale %s (%s)",
            self._settings.topic,
            self._settings.group,
            self._settings.sale_name,
            self._settings.sale_id,
        )
        while not self._stop.is_set():
            self._metrics.beat()
            self._refresh_lag()
            messages = self._source.poll_batch()
            if not messages:
                continue
            try:
                if not self._process(messages):
                    break  # stopping while the database is away: the batch stays uncommitted
            except OversellError as error:
                log.critical(
                    "OVERSELL ALARM for sale %s: the ledger would go below zero; rolled back, offsets"
                    " not committed, stopping. %s",
                    self._settings.sale_id,
                    error,
                )
                return EXIT_OVERSELL
            except PermanentDatabaseError as error:
                self._metrics.db_errors.labels(self._settings.sale_name).inc()
                log.critical("the database refused a batch, stopping (offsets not committed): %s", error)
                return EXIT_FAILED
        log.info("stopped")
        return EXIT_OK

    def _process(self, messages: list[Message]) -> bool:
        """One batch: False only if it was abandoned (stop requested while the database is away)."""
        sale = self._settings.sale_name
        started = time.perf_counter()
        # The gateway enforced the limit in force when it reserved; while a change of the limit rolls
        # out, gateways and consumers of both limits run side by side, so only the hard bound makes a
        # message poison (a lower limit here would drop orders a newer gateway rightly accepted).
        batch = decode_batch(messages, self._settings.sale_id, MAX_PER_USER_LIMIT)
        for poison in batch.poison:
            log.warning(
                "skipping poison record %s[%d]@%d #%d: %s",
                poison.topic,
                poison.partition,
                poison.offset,
                poison.record,
                poison.reason,
            )
        if batch.poison:
            self._metrics.poison.labels(sale).inc(len(batch.poison))
        # A message holds a gateway batch of records: claim and write at most batch_size of them at
        # a time, so one Redis call and one transaction stay bounded; the offsets go after the last.
        step = self._settings.batch_size
        for start in range(0, len(batch.reservations), step):
            if not self._claim_and_write(batch.reservations[start : start + step]):
                return False  # stopping while Redis or the database is away: the batch stays uncommitted
        self._source.commit(next_offsets(messages))
        self._metrics.batch_size.labels(sale).observe(len(messages))
        self._metrics.batch_seconds.labels(sale).observe(time.perf_counter() - started)
        return True

    def _claim_and_write(self, decoded: list[ReservationMessage]) -> bool:
        """Claim, write, mark ordered; False if it was abandoned (stopping)."""
        reservations = self._claim(decoded)
        if reservations is None:
            return False
        result = self._write(reservations) if reservations else WriteResult([], [], None)
        if result is None:
            return False
        self._account(reservations, result)
        self._pending.mark_ordered(result.ordered)
        return True

    def _claim(self, reservations: list[ReservationMessage]) -> list[ReservationMessage] | None:
        """The reservations to write: those not given back. Retries while Redis is away (None: stopping)."""
        attempt = 0
        while True:
            try:
                given_back = self._pending.claim([r.reservation_id for r in reservations])
                break
            except redis.RedisError as error:
                self._metrics.redis_errors.labels(self._settings.sale_name).inc()
                delay = _RETRY_SECONDS[min(attempt, len(_RETRY_SECONDS) - 1)]
                log.warning("redis unreachable for the claim (retrying in %.1fs): %s", delay, error)
                attempt += 1
                self._metrics.beat()
                if self._stop.wait(delay):
                    return None
        skipped = sum(given_back)
        if skipped:
            self._metrics.given_back.labels(self._settings.sale_name).inc(skipped)
            log.info("%d reservations were given back to the gate before their order: skipped", skipped)
        return [r for r, back in zip(reservations, given_back, strict=True) if not back]

    def _write(self, reservations: list[ReservationMessage]) -> WriteResult | None:
        """Retries a transient failure with backoff (the batch is idempotent) until it works or we stop."""
        attempt = 0
        while True:
            try:
                return self._store.write(reservations)
            except psycopg.OperationalError as error:
                self._metrics.db_errors.labels(self._settings.sale_name).inc()
                delay = _RETRY_SECONDS[min(attempt, len(_RETRY_SECONDS) - 1)]
                log.warning("database write failed (retrying in %.1fs): %s", delay, error)
                attempt += 1
                self._metrics.beat()
                if self._stop.wait(delay):
                    return None

    def _account(self, reservations: list[ReservationMessage], result: WriteResult) -> None:
        sale = self._settings.sale_name
        inserted = set(result.inserted)
        units = sum(r.quantity for r in reservations if r.reservation_id in inserted)
        self._metrics.orders.labels(sale).inc(len(result.inserted))
        self._metrics.order_units.labels(sale).inc(units)
        self._metrics.redelivered.labels(sale).inc(len(result.already_ordered))
        rejected = len(reservations) - len(result.inserted) - len(result.already_ordered)
        if rejected:
            self._metrics.rejected.labels(sale).inc(rejected)
            log.warning("%d reservations refused: their users already hold a live order", rejected)
        if result.remaining is not None:
            self._metrics.remaining.labels(sale).set(result.remaining)

    def _refresh_lag(self) -> None:
        now = time.monotonic()
        if now >= self._next_lag:
            self._next_lag = now + LAG_EVERY_SECONDS
            self._metrics.set_lag(self._source.lag())
