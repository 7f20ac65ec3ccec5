"""One loop per sale, from creation to deletion: prewarm, flip on the second, end, and report.

Each tick reads the gate (one Redis round trip), decides (`phases.decide`), acts on Redis, then reads
the slower things (the record, the children) and writes the status when it changed. Between ticks it
sleeps until the next tick or the next moment the clock changes the phase, whichever comes first,
and wakes at once when a handler pokes it (a spec change, `paused`). The flag's flip therefore
happens right after the wake-up at `startsAt`, one Redis call later.

It is the only writer of the status (kopf's handlers tell it things through the sale's memo), so
conditions need no read-modify-write against other writers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import kopf

from flashsale_operator import metrics, queue, status
from flashsale_operator.checkpoints import Step, checkpoint
from flashsale_operator.conditions import ConditionType, Reason, set_condition, with_ready
from flashsale_operator.phases import Decision, Gate, decide
from flashsale_operator.runtime import Platform, SaleState
from flashsale_operator.spec import GROUP, KIND, VERSION, FlashSaleSpec, Phase
from flashsale_sale.contract import topic_name
from flashsale_sale.prewarm import Built, PrewarmRefused, SaleSpec

log = logging.getLogger(__name__)


class SaleLoop:
    def __init__(self, platform: Platform, sale: SaleState, body: Any, status_now: dict[str, Any]) -> None:
        self.platform = platform
        self.sale = sale
        self.body = body
        self.recorded = status.recorded_from(status_now)
        self.conditions: list[dict[str, Any]] = list(status_now.get("conditions") or [])
        self.written: dict[str, Any] | None = None
        self.observed = status.Observed()
        # A phase recorded by an earlier run may not have been announced (a crash in between): its
        # Event has a name derived from phaseSince, so announcing it again is a no-op if it was.
        self.announcements: list[tuple[Phase, datetime, str]] = []
        if self.recorded.phase and self.recorded.phase_since:
            resumed = (
                self.recorded.phase,
                self.recorded.phase_since,
                f"{self.recorded.phase.value} (resumed)",
            )
            self.announcements.append(resumed)

    @property
    def uid(self) -> str:
        return self.sale.ref.uid

    async def run(self, stopped: kopf.DaemonStopped) -> None:
        interval = self.platform.config.status_interval_seconds
        while not stopped:
            self.sale.wake.clear()
            wake_at = await self.tick()
            now = datetime.now(UTC)
            pause = interval if wake_at is None else min(interval, (wake_at - now).total_seconds())
            spec = self.sale.accepted
            if spec is not None and wake_at == spec.starts_at and 0 < pause < 1:
                self._checkpoint("before-start")
            if pause > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.sale.wake.wait(), timeout=pause)

    async def tick(self) -> datetime | None:
        spec = self.sale.accepted
        if spec is None:
            await self._report(None, None)
            return None
        try:
            gate = await asyncio.to_thread(self.platform.stores.read_gate, self.uid)
        except Exception as error:  # Redis down: keep the recorded phase, say why, retry next tick
            metrics.ERRORS.labels("redis").inc()
            self._condition(ConditionType.ACCEPTING_ORDERS, False, Reason.REDIS_UNAVAILABLE, str(error))
            await self._report(spec, None)
            return None
        decision = decide(spec, datetime.now(UTC), gate, self.recorded)
        if decision.flag is not None:
            await self._flip(spec, decision.flag)
        if decision.build_gate:
            if not decision.rebuilding:  # Prewarming is a phase of its own, seen before the gate exists
                await self._record(spec, decision)
                await self._report(spec, decision)
            await self._build_gate(spec, decision)
            return datetime.now(UTC)  # decide again at once with the gate built
        await self._record(spec, decision)
        await self._report(spec, decision)
        return decision.wake_at

    async def _flip(self, spec: FlashSaleSpec, is_open: bool) -> None:
        flip = await asyncio.to_thread(self.platform.stores.set_open, self.uid, is_open)
        at = datetime.fromtimestamp(flip.at_ms / 1000, UTC)
        if is_open and flip.changed and self.recorded.started_at is None:
            self._checkpoint("flipped")
            skew = (at - spec.starts_at).total_seconds()
            metrics.FLAG_SKEW.observe(max(skew, 0.0))
            log.info("sale %s: flag on at %s (%.1f ms after startsAt)", self.sale.ref.name, at, skew * 1000)
            self.recorded = replace(self.recorded, started_at=at)

    async def _build_gate(self, spec: FlashSaleSpec, decision: Decision) -> None:
        sale = SaleSpec(self.uid, self.sale.ref.name, spec.stock, spec.per_user_limit)
        reopen = decision.rebuilding and not spec.paused
        if decision.rebuilding:
            self._condition(ConditionType.GATE_READY, False, Reason.GATE_LOST, "rebuilding the gate")
            kopf.warn(
                self.body, reason="GateLost", message="the Redis gate is gone: rebuilding from the record"
            )
            await self._report(spec, decision)
        if self.sale.waiting and not decision.rebuilding:  # no topic yet: nothing to build a gate on
            self._condition(ConditionType.GATE_READY, False, Reason.NOT_PREWARMED, self.sale.waiting)
            await asyncio.sleep(1.0)
            return
        bootstrap = queue.bootstrap_servers(self.sale.ref, spec, self.platform.config)
        try:
            built = await asyncio.to_thread(
                self.platform.stores.build_gate, sale, topic_name(self.uid), bootstrap, open_after=reopen
            )
        except (PrewarmRefused, Exception) as error:
            metrics.ERRORS.labels("prewarm").inc()
            self._condition(ConditionType.GATE_READY, False, Reason.PREWARM_FAILED, str(error))
            kopf.warn(self.body, reason="PrewarmFailed", message=str(error))
            await asyncio.sleep(1.0)  # no hot loop while the record or Redis refuses
            return
        self._checkpoint("prewarmed")
        reason = Reason.REBUILT if built is Built.REBUILT else Reason.PREWARMED
        if built is Built.REBUILT:
            kopf.info(
                self.body, reason="GateRebuilt", message="the gate was rebuilt from the record and reopened"
            )
        self._condition(ConditionType.GATE_READY, True, reason, f"gate {built.value}")
        if self.recorded.prewarmed_at is None:
            self.recorded = replace(self.recorded, prewarmed_at=datetime.now(UTC))

    async def _record(self, spec: FlashSaleSpec, decision: Decision) -> None:
        """Moves the recorded phase; an Event and a metric for each change."""
        recorded = self.recorded
        now = datetime.now(UTC)
        phase = decision.phase
        if recorded.prewarmed_at is None and phase in _GATE_BUILT:
            recorded = replace(recorded, prewarmed_at=now)
        if phase is Phase.ENDED and recorded.ended_at is None:
            recorded = replace(recorded, ended_at=now)
        if phase in (Phase.LIVE, Phase.SOLD_OUT) and recorded.started_at is None:
            recorded = replace(recorded, started_at=now)
        if recorded.phase is not phase:
            before = recorded.phase
            recorded = replace(recorded, phase=phase, phase_since=now)
            metrics.TRANSITIONS.labels(phase.value).inc()
            message = f"{before.value if before else 'new'} -> {phase.value}"
            self.announcements.append((phase, now, message))  # posted once the status holds it
            log.info("sale %s: %s", self.sale.ref.name, message)
        self.recorded = recorded
        if recorded.prewarmed_at is not None:
            self.sale.reached_ready.set()
        metrics.sale_phase(f"{self.sale.ref.namespace}/{self.sale.ref.name}", phase)
        open_now = phase in (Phase.LIVE, Phase.SOLD_OUT)
        reason = {Phase.PAUSED: Reason.PAUSED, Phase.ENDED: Reason.ENDED}.get(phase, Reason.NOT_STARTED)
        self._condition(
            ConditionType.ACCEPTING_ORDERS,
            open_now,
            Reason.OPENED if open_now else reason,
            f"the start flag is {'on' if open_now else 'off'} ({phase.value})",
        )
        gate_ready = next((c for c in self.conditions if c.get("type") == ConditionType.GATE_READY), None)
        if recorded.prewarmed_at is not None and (gate_ready is None or gate_ready.get("status") != "True"):
            self._condition(ConditionType.GATE_READY, True, Reason.PREWARMED, "the Redis gate is built")

    async def _report(self, spec: FlashSaleSpec | None, decision: Decision | None) -> None:
        """Reads the record and the children, then writes the status if anything changed."""
        await self._observe()
        self._spec_conditions()
        self.conditions = with_ready(self.conditions, now=datetime.now(UTC), generation=self.sale.generation)
        if self.sale.failed and self.recorded.phase is not Phase.FAILED:
            failed_at = datetime.now(UTC)
            self.recorded = replace(self.recorded, phase=Phase.FAILED, phase_since=failed_at)
            self.announcements.append((Phase.FAILED, failed_at, "the spec cannot run: see SpecValid"))
            metrics.sale_phase(f"{self.sale.ref.namespace}/{self.sale.ref.name}", Phase.FAILED)
        body = status.assemble(
            stock=spec.stock if spec else int(self.body["spec"].get("stock", 0) or 0),
            recorded=self.recorded,
            observed=self.observed,
            generation=self.sale.generation,
            conditions=self.conditions,
        )
        if body == self.written:
            return
        try:
            ref = self.sale.ref
            await asyncio.to_thread(self.platform.kube.patch_status, ref.name, ref.namespace, body)
            self.written = body
            if self.recorded.phase is Phase.LIVE:
                self._checkpoint("live")
            await self._announce()
        except Exception as error:
            metrics.ERRORS.labels("status").inc()
            log.warning("sale %s: status not written (%s); next tick", self.sale.ref.name, error)

    async def _announce(self) -> None:
        """Each recorded phase's Event, in order, named after the sale, the phase and when it was
        entered: a phase announced before a crash is not announced again (409), one that was not is."""
        ref = self.sale.ref
        involved = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "name": ref.name,
                    "namespace": ref.namespace, "uid": ref.uid}  # fmt: skip
        while self.announcements:
            phase, since, message = self.announcements[0]
            name = f"{ref.name}.{phase.value.lower()}.{int(since.timestamp() * 1000)}"
            kind = "Warning" if phase is Phase.FAILED else "Normal"
            try:
                await asyncio.to_thread(
                    self.platform.kube.post_event, involved, name, phase.value, message, kind
                )
            except Exception as error:
                metrics.ERRORS.labels("event").inc()
                log.warning("sale %s: phase Event not posted (%s); next tick", ref.name, error)
                return
            self.announcements.pop(0)

    async def _observe(self) -> None:
        stores, kube, ref = self.platform.stores, self.platform.kube, self.sale.ref
        observed = self.observed
        try:
            gate: Gate = await asyncio.to_thread(stores.read_gate, self.uid)
            reserved = await asyncio.to_thread(stores.reserved, self.uid)
            history = await asyncio.to_thread(stores.flips, self.uid)
            last = datetime.fromtimestamp(history[-1][1] / 1000, UTC) if history else None
            observed = replace(
                observed,
                remaining=gate.remaining,
                reserved=reserved,
                flag_open=gate.open,
                flips=len(history),
                last_flip_at=last,
            )
        except Exception as error:
            metrics.ERRORS.labels("redis").inc()
            log.debug("sale %s: gate not read: %s", ref.name, error)
        try:
            units = await asyncio.to_thread(stores.orders_by_state, self.uid)
            observed = replace(observed, units_by_state=units)
        except Exception as error:
            metrics.ERRORS.labels("database").inc()
            log.debug("sale %s: record not read: %s", ref.name, error)
        if self.sale.conflict:  # the names are taken by objects not the sale's: nothing of ours to read
            self.observed = observed
            return
        try:
            url = await asyncio.to_thread(kube.service_url, f"{ref.name}-gateway", ref.namespace)
            ready = await asyncio.to_thread(kube.ready_replicas, f"{ref.name}-gateway", ref.namespace)
            observed = replace(observed, gateway_url=url, gateway_ready=ready or 0)
            self._gateway_condition(url, ready or 0)
        except Exception as error:
            metrics.ERRORS.labels("kubernetes").inc()
            log.debug("sale %s: children not read: %s", ref.name, error)
        self.observed = observed

    def _gateway_condition(self, url: str | None, ready: int) -> None:
        wanted = self.sale.accepted.gateway.replicas if self.sale.accepted else 0
        ok = ready >= wanted > 0 and url is not None
        message = f"{ready}/{wanted} replicas Ready, address {url or 'pending'}"
        reason = Reason.REPLICAS_READY if ok else Reason.REPLICAS_NOT_READY
        self._condition(ConditionType.GATEWAY_READY, ok, reason, message)

    def _spec_conditions(self) -> None:
        sale = self.sale
        if sale.problems:
            first = sale.problems[0]
            message = "; ".join(f"{p.field}: {p.message}" for p in sale.problems)
            self._condition(ConditionType.SPEC_VALID, False, first.reason, message)
        else:
            self._condition(ConditionType.SPEC_VALID, True, Reason.VALID, "the spec is valid")
        if sale.conflict:
            self._condition(ConditionType.CHILDREN_READY, False, Reason.CONFLICT, sale.conflict)
        elif sale.apply_error:
            self._condition(ConditionType.CHILDREN_READY, False, Reason.APPLY_FAILED, sale.apply_error)
        elif sale.waiting and sale.accepted is not None:
            self._condition(ConditionType.CHILDREN_READY, False, Reason.WAITING, sale.waiting)
        elif sale.accepted is not None:
            self._condition(ConditionType.CHILDREN_READY, True, Reason.APPLIED, "children applied")

    def _checkpoint(self, step: Step) -> None:
        checkpoint(step, self.body)  # a no-op in the product (checkpoints.py)

    def _condition(self, kind: ConditionType, ok: bool, reason: Reason | str, message: str) -> None:
        now = datetime.now(UTC)
        self.conditions = set_condition(
            self.conditions, kind, ok, reason, message, now=now, generation=self.sale.generation
        )


_GATE_BUILT = (Phase.READY, Phase.LIVE, Phase.PAUSED, Phase.SOLD_OUT)
