"""What a load run saw, and its report (pure): answers by outcome, latency, sell-out, the books."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # 202: a reservation
    SOLD_OUT = "sold_out"  # 410
    FEWER_LEFT = "fewer_left"  # 409: less stock left than asked
    LIMITED = "limited"  # 429: the per-user rate limit
    SHED = "shed"  # 503: beyond the admission rate, or the gate or queue cannot answer
    REFUSED = "refused"  # 401: no valid token (the bots)
    NOT_LIVE = "not_live"  # 404: not the live order path
    INVALID = "invalid"  # 400, 413, 422: the request was not understood
    SERVER_ERROR = "server_error"  # any other 5xx
    OTHER = "other"  # any other status
    NETWORK = "network"  # no answer: refused, reset or timed out


_BY_STATUS = {
    202: Outcome.ACCEPTED,
    410: Outcome.SOLD_OUT,
    409: Outcome.FEWER_LEFT,
    429: Outcome.LIMITED,
    503: Outcome.SHED,
    401: Outcome.REFUSED,
    404: Outcome.NOT_LIVE,
    400: Outcome.INVALID,
    413: Outcome.INVALID,
    422: Outcome.INVALID,
}


def outcome_of(status: int) -> Outcome:
    """A buy answer's outcome; status 0 means no answer came."""
    if status == 0:
        return Outcome.NETWORK
    return _BY_STATUS.get(status, Outcome.SERVER_ERROR if status >= 500 else Outcome.OTHER)


def percentile(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Tally:
    """Everything a run records; the clients add to it, `report()` sums it up."""

    answers: Counter[Outcome] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)  # every buy answer's
    reservations: dict[str, int] = field(default_factory=dict)  # id -> units
    repeat_clicks: int = 0
    repeat_new_reservations: int = 0  # a repeat click that got a DIFFERENT reservation: must stay 0
    sold_out_at_s: float | None = None  # first 410 or sold-out status, after the sale was seen live
    saw_not_live: int = 0  # shoppers who arrived to a status without an order path
    paid: set[str] = field(default_factory=set)
    payment_expired: set[str] = field(default_factory=set)
    states: dict[str, str] = field(default_factory=dict)  # id -> last state GET /api/orders/{id} said
    requests: int = 0  # every request sent, of every kind

    def answered(self, status: int, latency_s: float, at_s: float) -> Outcome:
        outcome = outcome_of(status)
        self.answers[outcome] += 1
        self.latencies_s.append(latency_s)
        if outcome is Outcome.SOLD_OUT:
            self.sold_out(at_s)
        return outcome

    def sold_out(self, at_s: float) -> None:
        if self.sold_out_at_s is None:
            self.sold_out_at_s = at_s


def report(tally: Tally, *, sale: str, users: int, duration_s: float) -> dict[str, Any]:
    """The run's report as data (`--json` writes it as it is)."""
    ordered_ms = sorted(1000 * s for s in tally.latencies_s)
    states = Counter(tally.states.values())
    became_orders = states["ordered"] + states["paid"] + states["expired"]
    return {
        "sale": sale,
        "users": users,
        "duration_s": round(duration_s, 3),
        "requests": tally.requests,
        "buy_answers": {str(o): tally.answers[o] for o in Outcome if tally.answers[o]},
        "latency_ms": {
            "p50": round(percentile(ordered_ms, 0.50), 2),
            "p90": round(percentile(ordered_ms, 0.90), 2),
            "p99": round(percentile(ordered_ms, 0.99), 2),
            "max": round(ordered_ms[-1], 2) if ordered_ms else 0.0,
        },
        "sold_out_after_s": None if tally.sold_out_at_s is None else round(tally.sold_out_at_s, 3),
        "arrived_not_live": tally.saw_not_live,
        "repeat_clicks": tally.repeat_clicks,
        "repeat_new_reservations": tally.repeat_new_reservations,
        "accepted": {"reservations": len(tally.reservations), "units": sum(tally.reservations.values())},
        "ordered": {
            "reservations": became_orders,
            "units": sum(tally.reservations[r] for r, s in tally.states.items() if s != "reserved"),
        },
        "paid": {"reservations": len(tally.paid), "units": sum(tally.reservations[r] for r in tally.paid)},
        "order_states": dict(sorted(states.items())),
        "unchecked": len(tally.reservations) - len(tally.states),
        # For an audit against the record (the orders table is keyed by reservation id).
        "reservation_ids": {"accepted": sorted(tally.reservations), "paid": sorted(tally.paid)},
    }


def render(summary: dict[str, Any]) -> str:
    """The report for a terminal."""
    answers = summary["buy_answers"]
    total = sum(answers.values()) or 1
    latency = summary["latency_ms"]
    sold_out = summary["sold_out_after_s"]
    lines = [
        f"flashsale load: {summary['sale']}, {summary['users']} users, {summary['duration_s']} s,"
        f" {summary['requests']} requests",
        "buy answers:",
        *(f"  {name:<14} {count:>8}  {100 * count / total:5.1f}%" for name, count in answers.items()),
        f"latency (ms): p50 {latency['p50']}  p90 {latency['p90']}  p99 {latency['p99']}"
        f"  max {latency['max']}",
        f"sold out after: {'not sold out' if sold_out is None else f'{sold_out} s from going live'}",
        f"arrived to no order path (sold out, paused, ended): {summary['arrived_not_live']}",
        *(
            f"{name + ':':<9} {summary[name]['reservations']} reservations ({summary[name]['units']} units)"
            for name in ("accepted", "ordered", "paid")
        ),
        f"repeat clicks: {summary['repeat_clicks']}, of which got a new reservation:"
        f" {summary['repeat_new_reservations']}",
    ]
    if summary["unchecked"]:
        lines.append(f"not checked (no answer from /api/orders in time): {summary['unchecked']}")
    return "\n".join(lines)
