"""The sale's phase and what to do about it: a pure function of the clock, the spec and what was observed.

    Scheduled --(startsAt - prewarmSeconds)--> Prewarming --(gate built)--> Ready
    Ready --(startsAt: flag on)--> Live <--(paused)--> Paused
    Live --(stock 0)--> SoldOut --(unpaid stock returned)--> Live
    Live/Paused/SoldOut --(endsAt: flag off)--> Ended (final)

Nothing here remembers anything: the operator re-derives the phase on every tick from Redis (the
flag, the gate) and from what its status recorded (prewarmedAt, startedAt, endedAt). So a restart at
any second neither skips a step nor repeats one: a flag that already says "open" is not flipped
again, a gate that exists is not built again, an ended sale stays ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flashsale_operator.spec import FlashSaleSpec, Phase


@dataclass(frozen=True)
class Recorded:
    """What the FlashSale's status says already happened."""

    phase: Phase | None = None
    prewarmed_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    phase_since: datetime | None = None  # when `phase` was entered: names its Event


@dataclass(frozen=True)
class Gate:
    """The sale's Redis gate as just read."""

    built: bool  # the stock key exists
    remaining: int | None
    open: bool  # the start flag


@dataclass(frozen=True)
class Decision:
    phase: Phase
    build_gate: bool = False  # prewarm (first build) or rebuild (the gate was lost)
    flag: bool | None = None  # what the start flag must say; None: leave it
    wake_at: datetime | None = None  # the next moment the phase changes by the clock alone

    @property
    def rebuilding(self) -> bool:
        return self.build_gate and self.phase not in (Phase.SCHEDULED, Phase.PREWARMING)


def prewarm_at(spec: FlashSaleSpec) -> datetime:
    return spec.starts_at - timedelta(seconds=spec.schedule.prewarm_seconds)


def decide(  # noqa: PLR0911 - one return per arrow of the diagram
    spec: FlashSaleSpec, now: datetime, gate: Gate, recorded: Recorded
) -> Decision:
    """Where the sale is now and what must change in Redis to match; see the module's diagram."""
    if recorded.ended_at is not None or now >= spec.ends_at:
        return Decision(Phase.ENDED, flag=False if gate.open else None)
    started = recorded.started_at is not None or now >= spec.starts_at
    if not started:
        if now < prewarm_at(spec):
            return Decision(Phase.SCHEDULED, flag=_close(gate), wake_at=prewarm_at(spec))
        if not gate.built:
            return Decision(Phase.PREWARMING, build_gate=True, flag=_close(gate), wake_at=spec.starts_at)
        return Decision(Phase.READY, flag=_close(gate), wake_at=spec.starts_at)
    if not gate.built:
        if recorded.prewarmed_at is None:  # the start came before the gate was ever built: build it now
            return Decision(Phase.PREWARMING, build_gate=True, wake_at=spec.ends_at)
        # Redis lost the gate of a started sale: keep the recorded phase while it is rebuilt.
        kept = recorded.phase if recorded.phase in _STARTED else Phase.LIVE
        return Decision(kept, build_gate=True, wake_at=spec.ends_at)
    if spec.paused:
        return Decision(Phase.PAUSED, flag=_close(gate), wake_at=spec.ends_at)
    flag = None if gate.open else True
    if gate.remaining == 0:
        # The flag stays on: gateways answer "sold out", and returned stock sells again at once.
        return Decision(Phase.SOLD_OUT, flag=flag, wake_at=spec.ends_at)
    return Decision(Phase.LIVE, flag=flag, wake_at=spec.ends_at)


_STARTED = (Phase.LIVE, Phase.PAUSED, Phase.SOLD_OUT)


def _close(gate: Gate) -> bool | None:
    return False if gate.open else None
