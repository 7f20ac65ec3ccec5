"""The FlashSale's status as a pure function of what the operator decided and observed.

Stock numbers partition the sale's units at one moment (each from its source of truth):

    total = remaining + reserved + ordered + paid
    remaining  units left in the Redis gate (expired orders' units are back in it)
    reserved   reservations the gate accepted that are not orders yet (in Kafka or being written)
    ordered    orders in PostgreSQL awaiting payment
    paid       paid orders
    expired    units of orders that timed out unpaid and went back to the gate (already in remaining)

Redis and PostgreSQL are read one after the other, so a unit moving between them meanwhile may be
counted in two places for one tick; `flashsale reconcile` is the exact check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flashsale_operator.phases import Recorded
from flashsale_operator.spec import Phase


@dataclass(frozen=True)
class Observed:
    """Everything a tick read: the gate, the record, the children."""

    remaining: int | None = None
    reserved: int = 0
    units_by_state: dict[str, int] = field(default_factory=dict)
    gateway_url: str | None = None
    gateway_ready: int = 0
    flag_open: bool = False
    flips: int = 0
    last_flip_at: datetime | None = None


def rfc3339(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def recorded_from(status: dict[str, Any]) -> Recorded:
    """What an earlier run of the operator recorded (status read back after a restart)."""
    phase = str(status.get("phase") or "")
    return Recorded(
        phase=Phase(phase) if phase in set(Phase) else None,
        prewarmed_at=parse_time(status.get("prewarmedAt")),
        started_at=parse_time(status.get("startedAt")),
        ended_at=parse_time(status.get("endedAt")),
        phase_since=parse_time(status.get("phaseSince")),
    )


def assemble(
    *,
    stock: int,
    recorded: Recorded,
    observed: Observed,
    generation: int | None,
    conditions: list[dict[str, Any]],
) -> dict[str, Any]:
    units = observed.units_by_state
    return {
        "phase": str(recorded.phase) if recorded.phase else None,
        "observedGeneration": generation,
        "prewarmedAt": rfc3339(recorded.prewarmed_at),
        "startedAt": rfc3339(recorded.started_at),
        "endedAt": rfc3339(recorded.ended_at),
        "phaseSince": rfc3339(recorded.phase_since),
        "stock": {
            "total": stock,
            "remaining": observed.remaining,
            "reserved": observed.reserved,
            "ordered": units.get("ordered", 0),
            "paid": units.get("paid", 0),
            "expired": units.get("expired", 0),
        },
        "gateway": {"url": observed.gateway_url, "readyReplicas": observed.gateway_ready},
        "flag": {
            "open": observed.flag_open,
            "flips": observed.flips,
            "lastFlipAt": rfc3339(observed.last_flip_at),
        },
        "conditions": conditions,
    }
