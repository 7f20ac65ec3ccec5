"""The consumer scaling loop of one sale: the Kafka backlog in, the Deployment's replicas out.

Its own loop, not the HPA: every second it reads the group's lag from the broker (high watermark -
committed offset, per partition), asks `autoscale.decide`, and writes a change through the
Deployment's scale subresource (the applied Deployment leaves `replicas` to it). It runs from the
moment the sale is Ready until the sale is deleted - after SoldOut and Ended too, so a backlog still
drains and the replicas still come back down. Each decision goes to `status.consumers`, each change
also to an Event and the metrics; an unreadable lag changes nothing and the status says why.
Consumers use the cooperative-sticky assignor, so a change moves only the partitions it must.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

import kopf

from flashsale_operator import metrics, queue
from flashsale_operator.autoscale import (
    ScaleDecision,
    ScalePolicy,
    ScaleReason,
    Seen,
    decide,
    remember,
    wanted_replicas,
)
from flashsale_operator.checkpoints import checkpoint
from flashsale_operator.runtime import Platform, SaleState
from flashsale_operator.spec import FlashSaleSpec
from flashsale_operator.status import rfc3339
from flashsale_sale.contract import topic_name
from flashsale_sale.lag import GroupLag

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0


def policy_of(spec: FlashSaleSpec) -> ScalePolicy:
    consumers = spec.consumers
    return ScalePolicy(
        min_replicas=consumers.min_replicas,
        max_replicas=consumers.max_replicas,
        lag_threshold=consumers.lag_threshold,
        window_seconds=float(consumers.scale_down_stabilization_seconds),
        partitions=spec.queue.partitions,
    )


class ConsumerScaler:
    def __init__(self, platform: Platform, sale: SaleState, body: Any, status_now: dict[str, Any]) -> None:
        self.platform = platform
        self.sale = sale
        self.body = body
        self.history: tuple[Seen, ...] = ()
        self.started = time.monotonic()
        recorded = dict(status_now.get("consumers") or {})
        self.last_scale_time: str | None = recorded.get("lastScaleTime")
        self.written: dict[str, Any] | None = None
        self.reader: GroupLag | None = None
        self.reader_bootstrap = ""

    @property
    def deployment(self) -> str:
        return f"{self.sale.ref.name}-consumer"

    async def run(self, stopped: kopf.DaemonStopped) -> None:
        try:
            await self._loop(stopped)
        finally:
            if self.reader is not None:
                await asyncio.to_thread(self.reader.close)

    async def _loop(self, stopped: kopf.DaemonStopped) -> None:
        while not stopped:
            if self.sale.reached_ready.is_set():
                spec = self.sale.accepted
                if spec is not None and spec.consumers.scaler == "builtin":
                    await self.tick(spec)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.sale.wake.wait(), timeout=TICK_SECONDS)

    async def tick(self, spec: FlashSaleSpec) -> None:
        ref, kube = self.sale.ref, self.platform.kube
        policy = policy_of(spec)
        bootstrap = queue.bootstrap_servers(ref, spec, self.platform.config)
        try:
            lag = await asyncio.to_thread(self._reader(bootstrap).read)
            current = await asyncio.to_thread(kube.replicas, self.deployment, ref.namespace)
        except Exception as error:  # never read an error as zero lag: hold, and say why
            metrics.ERRORS.labels("lag").inc()
            self._drop_reader()
            await self._report(
                None, None, None, ScaleReason.LAG_UNKNOWN, f"lag unknown, replicas held: {error}"
            )
            return
        if current is None:  # the Deployment is not there yet (or any more)
            return
        now = time.monotonic()
        seen = Seen(now, wanted_replicas(lag.total, policy))
        self.history = remember(self.history, seen, policy.window_seconds)
        decision = decide(current, lag.total, self.history, policy, watched_seconds=now - self.started)
        if decision.changes(current):
            scaled = await asyncio.to_thread(
                kube.scale, self.deployment, ref.namespace, decision.replicas, owner_uid=ref.uid
            )
            if not scaled:  # not the sale's Deployment (ownership.py): never touched
                return
            checkpoint("scaled", self.body)  # a no-op in the product (checkpoints.py)
            self._announce(current, decision)
        metrics.CONSUMER_LAG.labels(ref.namespace, ref.name).set(lag.total)
        metrics.CONSUMER_REPLICAS.labels(ref.namespace, ref.name).set(decision.replicas)
        metrics.CONSUMER_DESIRED.labels(ref.namespace, ref.name).set(decision.wanted)
        await self._report(decision.replicas, decision.wanted, lag.total, decision.reason, decision.message)

    def _reader(self, bootstrap: str) -> GroupLag:
        if self.reader is None or self.reader_bootstrap != bootstrap:
            self._drop_reader()
            ref = self.sale.ref
            self.reader = self.platform.stores.lag_reader(topic_name(ref.uid), ref.uid, bootstrap)
            self.reader_bootstrap = bootstrap
        return self.reader

    def _drop_reader(self) -> None:
        """A reader that failed is replaced (its clients may be stuck on a broker that went away)."""
        if self.reader is not None:
            self.reader.close()
            self.reader = None

    def _announce(self, before: int, decision: ScaleDecision) -> None:
        self.last_scale_time = rfc3339(datetime.now(UTC))
        metrics.SCALES.labels(decision.reason.value).inc()
        message = f"consumers {before} -> {decision.replicas}: {decision.message}"
        kopf.info(self.body, reason=decision.reason.value, message=message)
        log.info("sale %s: %s", self.sale.ref.name, message)

    async def _report(
        self, replicas: int | None, wanted: int | None, lag: int | None, reason: ScaleReason, message: str
    ) -> None:
        """status.consumers (this loop's own part of the status; the phase loop never writes it)."""
        previous = (self.written or {}).get("consumers", {})
        consumers = {
            "replicas": replicas if replicas is not None else previous.get("replicas"),
            "desiredReplicas": wanted if wanted is not None else previous.get("desiredReplicas"),
            "lag": lag if lag is not None else previous.get("lag"),
            "lastScaleTime": self.last_scale_time,
            "lastScaleReason": reason.value,  # the latest decision's (lastScaleTime: the latest change's)
            "message": message,
        }
        body = {"consumers": consumers}
        if body == self.written:
            return
        ref = self.sale.ref
        try:
            await asyncio.to_thread(self.platform.kube.patch_status, ref.name, ref.namespace, body)
            self.written = body
        except Exception as error:
            metrics.ERRORS.labels("status").inc()
            log.warning("sale %s: consumers' status not written (%s)", ref.name, error)
