"""`kubectl delete fsale X`: close the sale, stop its writers, settle, then remove its Redis keys and topic.

Run from the finalizer, step by step; each step is idempotent and a step that must wait raises
`kopf.TemporaryError`, so kopf retries it and a restarted operator resumes where it stopped:

1. the start flag off (gateways refuse new orders at once);
2. the gateways scaled to zero and gone (nothing publishes or writes a key any more);
3. the consumers drain the topic: every accepted reservation becomes an order, however long that
   takes (drain.py says when it is done; `Draining`, Events, metrics and a WARNING line say what
   is left meanwhile), unless the platform team annotates the escape hatch;
4. the consumers scaled to zero and gone (nothing writes a key back);
5. the sale retired in the record (its gate is never rebuilt) and its Redis keys removed;
6. its Kafka topic deleted - kept when the escape hatch dropped what was left in it.
The children then go by garbage collection (owner references); orders stay in PostgreSQL.

A dedicated queue (`spec.queue.mode: dedicated`) is drained from the sale's own broker; its topic is
deleted there too unless the broker is already gone (the broker, its Service and its claim go by
garbage collection and the StatefulSet's claim retention policy: the data goes with the sale).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf

from flashsale_operator import metrics, queue
from flashsale_operator.conditions import ConditionType, Reason, set_condition, with_ready
from flashsale_operator.drain import Decision, Seen, Verdict, decide, drain_status, warnings_due
from flashsale_operator.render import SaleRef
from flashsale_operator.runtime import Platform, SaleState
from flashsale_operator.spec import GROUP, KIND, VERSION
from flashsale_operator.status import rfc3339
from flashsale_sale.contract import topic_name

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
DRAIN_POLL_SECONDS = 2.0  # each look is a handler retry: kopf logs it and patches its progress


@dataclass(frozen=True)
class Deleting:
    """What the finalizer knows of the FlashSale being deleted (from its body, as last seen)."""

    started: datetime  # when the teardown began (kopf keeps it across operator restarts)
    mode: str = "shared"
    annotations: Mapping[str, str] = field(default_factory=dict)
    conditions: list[dict[str, Any]] = field(default_factory=list)
    generation: int | None = None


def component_selector(ref: SaleRef, component: str) -> str:
    return f"app.kubernetes.io/instance={ref.name},app.kubernetes.io/component={component}"


async def tear_down(platform: Platform, sale: SaleState, deleting: Deleting) -> None:
    ref, stores = sale.ref, platform.stores
    bootstrap = queue.bootstrap_for(ref, deleting.mode, platform.config)
    dedicated = deleting.mode == "dedicated"
    await asyncio.to_thread(stores.set_open, ref.uid, False)
    await _stop(platform, ref, "gateway")
    dropped = await Drain(platform, sale, deleting, bootstrap).run()
    await _stop(platform, ref, "consumer")
    await _retire(platform, ref, dropped=dropped)
    if dropped:
        where = "on the sale's own broker, which goes with it" if dedicated else "kept"
        log.warning("sale %s/%s: topic %s %s", ref.namespace, ref.name, topic_name(ref.uid), where)
    elif dedicated and await asyncio.to_thread(stores.broker_waiting, bootstrap) is not None:
        log.info("sale %s/%s: its broker is gone, and its topic with it", ref.namespace, ref.name)
    else:
        await asyncio.to_thread(stores.delete_topic, topic_name(ref.uid), bootstrap)
    stores.forget(bootstrap)
    for gauge in (metrics.DRAIN_UNWRITTEN, metrics.DRAIN_SECONDS):
        with contextlib.suppress(KeyError):  # never set: nothing was left to drain
            gauge.remove(ref.namespace, ref.name)
    log.info("sale %s/%s: torn down", ref.namespace, ref.name)


async def _stop(platform: Platform, ref: SaleRef, component: str) -> None:
    kube = platform.kube
    if not await asyncio.to_thread(
        kube.scale, f"{ref.name}-{component}", ref.namespace, 0, owner_uid=ref.uid
    ):
        return  # a Deployment of that name that is not the sale's (ownership.py): never touched
    left = await asyncio.to_thread(kube.pod_count, ref.namespace, component_selector(ref, component))
    if left:
        raise kopf.TemporaryError(f"waiting for {left} {component} pod(s) to be gone", delay=POLL_SECONDS)


async def _retire(platform: Platform, ref: SaleRef, *, dropped: bool) -> None:
    """Retired in the record, keys gone. After the escape hatch the record may be the failing store:
    the keys go all the same (this uid's gate can never be rebuilt: the object is going)."""
    try:
        await asyncio.to_thread(platform.stores.retire, ref.uid)
    except Exception as error:
        if not dropped:
            raise kopf.TemporaryError(f"the sale not retired: {error}", delay=POLL_SECONDS * 5) from error
        log.warning("sale %s/%s: not marked retired in the record (%s); keys dropped", ref.namespace,
                    ref.name, error)  # fmt: skip
        await asyncio.to_thread(platform.stores.drop_keys, ref.uid)


class Drain:
    """Step 3: one look at the topic per handler retry; holds the finalizer until it is drained."""

    def __init__(self, platform: Platform, sale: SaleState, deleting: Deleting, bootstrap: str) -> None:
        self.platform, self.sale, self.deleting, self.bootstrap = platform, sale, deleting, bootstrap
        self.ref = sale.ref
        self.dedicated = deleting.mode == "dedicated"

    async def run(self) -> bool:
        """Returns once nothing is left (False) or the escape hatch dropped the rest (True)."""
        seen = await self._look()
        if seen is None:
            return False
        overdue = warnings_due(seen.waited, self.platform.config.drain_warning_seconds) > 0
        decision = decide(seen, self.deleting.annotations, overdue=overdue)
        await self._report(seen, decision)
        if decision.verdict is Verdict.WAIT:
            raise kopf.TemporaryError(decision.message, delay=DRAIN_POLL_SECONDS)
        return decision.verdict is Verdict.DROP

    async def _look(self) -> Seen | None:
        """What is left; None when a dedicated broker is gone for good (its messages went with it)."""
        stores, ref = self.platform.stores, self.ref
        topic = topic_name(ref.uid)
        waited = (datetime.now(UTC) - self.deleting.started).total_seconds()
        try:
            lag = await asyncio.to_thread(stores.lag, topic, ref.uid, self.bootstrap)
        except Exception as error:
            if self.dedicated and not await self._broker_exists():
                log.error("sale %s/%s: its broker is gone, with whatever was not written", ref.namespace,
                          ref.name)  # fmt: skip
                return None
            return Seen(topic, None, {}, waited, str(error), self.dedicated)
        why = None
        if lag.total:
            why = await asyncio.to_thread(stores.database_problem)
            consumers = await asyncio.to_thread(
                self.platform.kube.pod_count, ref.namespace, component_selector(ref, "consumer")
            )
            why = why or ("no consumer pod is running" if not consumers else None)
        return Seen(topic, lag.total, dict(lag.unwritten), waited, why, self.dedicated)

    async def _broker_exists(self) -> bool:
        name = queue.broker_service(self.ref)
        return await asyncio.to_thread(self.platform.kube.statefulset_exists, name, self.ref.namespace)

    async def _report(self, seen: Seen, decision: Decision) -> None:
        ref, sale = self.ref, self.sale
        metrics.DRAIN_UNWRITTEN.labels(ref.namespace, ref.name).set(-1 if seen.left is None else seen.left)
        metrics.DRAIN_SECONDS.labels(ref.namespace, ref.name).set(seen.waited)
        drained = decision.verdict is Verdict.DRAINED
        if drained and sale.drain_written is None and not self._was_draining():
            return  # nothing was ever left: a plain teardown says nothing more
        changed = await self._write_status(seen, decision)
        if decision.verdict is Verdict.WAIT:
            if changed:  # each Event is posted once per teardown anyway (named after it)
                await self._event("Draining", decision.message, "Normal")
            if changed and decision.reason is Reason.DROP_REFUSED:
                await self._event("DropRefused", decision.message, "Warning")
            await self._warn_if_overdue(seen, decision)
        elif not changed:  # said once (a retry waiting for the consumers to stop comes back here)
            return
        elif decision.verdict is Verdict.DROP:
            log.error("sale %s/%s: %s", ref.namespace, ref.name, decision.message)
            await self._event(str(decision.reason), decision.message, "Warning")
        else:
            log.info("sale %s/%s: drained after %.0f s", ref.namespace, ref.name, seen.waited)
            await self._event("Drained", f"{decision.message} after {seen.waited:.0f} s", "Normal")

    async def _warn_if_overdue(self, seen: Seen, decision: Decision) -> None:
        """The alert-worthy line: once per warning period the drain lasts (and a Warning Event)."""
        threshold = self.platform.config.drain_warning_seconds
        due = warnings_due(seen.waited, threshold)
        if due <= self.sale.drain_warned:
            return
        self.sale.drain_warned = due
        ref = self.ref
        log.warning("sale %s/%s: drain overdue: still deleting after %.0f s (threshold %.0f s): %s",
                    ref.namespace, ref.name, seen.waited, threshold, decision.message)  # fmt: skip
        overdue = f"still draining after {seen.waited:.0f} s (threshold {threshold:.0f} s)"
        message = f"{overdue}: {decision.message}"
        await self._event("DrainOverdue", message, "Warning")

    def _was_draining(self) -> bool:
        return any(c.get("type") == ConditionType.DRAINING for c in self.deleting.conditions)

    async def _write_status(self, seen: Seen, decision: Decision) -> bool:
        """The finalizer is the only writer now (the sale's loops stopped before the teardown began)."""
        now = datetime.now(UTC)
        conditions = set_condition(
            self.deleting.conditions,
            ConditionType.DRAINING,
            decision.verdict is Verdict.WAIT,
            decision.reason,
            decision.message,
            now=now,
            generation=self.deleting.generation,
        )
        conditions = with_ready(conditions, now=now, generation=self.deleting.generation)
        body = {
            "conditions": conditions,
            "drain": drain_status(seen, since=rfc3339(self.deleting.started),
                                  dropped=decision.verdict is Verdict.DROP),
        }  # fmt: skip
        if body == self.sale.drain_written:
            return False
        try:
            await asyncio.to_thread(self.platform.kube.patch_status, self.ref.name, self.ref.namespace, body)
            self.sale.drain_written = body
        except Exception as error:
            metrics.ERRORS.labels("status").inc()
            log.warning("sale %s: drain status not written (%s); next look", self.ref.name, error)
        return True

    async def _event(self, reason: str, message: str, kind: str) -> None:
        """One Event per teardown and reason: named after both, so a retry or a restart posts it once."""
        ref = self.ref
        involved = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "name": ref.name,
                    "namespace": ref.namespace, "uid": ref.uid}  # fmt: skip
        name = f"{ref.name}.{reason.lower()}.{int(self.deleting.started.timestamp() * 1000)}"
        try:
            await asyncio.to_thread(self.platform.kube.post_event, involved, name, reason, message, kind)
        except Exception as error:
            metrics.ERRORS.labels("event").inc()
            log.warning("sale %s: %s Event not posted (%s)", ref.name, reason, error)
