"""The reconciliation's verdict: is every unit of the sale counted exactly once? Pure, no I/O.

    initial = gate stock + pending (not yet ordered) + orders not expired + expired not yet returned

and the ledger agrees (remaining = initial - orders not expired), nobody holds more than the per-user
limit, and no reservation was both given back and kept as a live order. `reconcile_read.py` reads the
numbers from Redis and PostgreSQL (a stable snapshot); this module only judges them, so every rule is
tested with hand-made numbers. `flashsale reconcile` and the settlement loop's metric share it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Numbers:
    """What the two stores say about one sale, at one (stable) moment."""

    sale_id: str
    initial: int  # the record's initial stock (sales.initial_stock)
    per_user_limit: int
    retired: bool  # torn down: the gate is gone on purpose
    ledger: int | None  # stock_ledger.remaining (None: no ledger row)
    gate_stock: int | None  # Redis stock; None: no gate
    gate_initial: int | None  # Redis `initial`
    pending_units: int  # reservations pending in the gate that are not orders
    live_units: int  # orders ordered or paid
    unreturned_units: int  # expired orders whose units are not back in the gate (not in `settled`)
    orders: Mapping[str, int] = field(default_factory=dict)  # orders by state
    users_above_limit: Mapping[str, int] = field(default_factory=dict)  # user -> live units
    given_back_and_live: Sequence[str] = ()  # live orders whose ids are in `settled`


@dataclass(frozen=True)
class Verdict:
    numbers: Numbers
    ok: bool
    unaccounted: int | None  # initial - everything counted; None when there is no gate to count
    problems: list[str]

    def to_json(self) -> str:
        payload: dict[str, Any] = {
            "ok": self.ok,
            "unaccountedUnits": self.unaccounted,
            "problems": self.problems,
            **asdict(self.numbers),
        }
        payload["orders"] = dict(self.numbers.orders)
        payload["users_above_limit"] = dict(self.numbers.users_above_limit)
        payload["given_back_and_live"] = list(self.numbers.given_back_and_live)
        return json.dumps(payload, sort_keys=True)

    def report(self) -> str:
        """The human answer: the sum laid out line by line, then each problem."""
        n = self.numbers
        lines = [f"sale {n.sale_id}: {'OK' if self.ok else 'MISMATCH'}"]
        if n.gate_stock is not None:
            counted = n.gate_stock + n.pending_units + n.live_units + n.unreturned_units
            lines += [
                f"  initial stock (record)        {n.initial:>10}",
                f"    gate stock (Redis)          {n.gate_stock:>10}",
                f"  + pending, not yet ordered    {n.pending_units:>10}",
                f"  + orders not expired          {n.live_units:>10}",
                f"  + expired, not yet returned   {n.unreturned_units:>10}",
                f"  = counted                     {counted:>10}   ({self.unaccounted} unaccounted)",
            ]
        ledger = "missing" if n.ledger is None else str(n.ledger)
        expected = n.initial - n.live_units
        lines.append(f"  ledger remaining {ledger}, expected {n.initial} - {n.live_units} = {expected}")
        states = ", ".join(f"{state} {count}" for state, count in sorted(n.orders.items())) or "none"
        lines.append(f"  orders: {states}")
        lines += [f"  PROBLEM: {problem}" for problem in self.problems]
        return "\n".join(lines)


def judge(n: Numbers) -> Verdict:
    """Every rule of docs/settlement.md's reconciliation, on one set of numbers."""
    problems: list[str] = []
    unaccounted: int | None = None
    if n.gate_stock is None:
        if not n.retired:
            problems.append("the gate is missing (Redis lost it?): rebuild it with `flashsale prewarm`")
    else:
        unaccounted = n.initial - (n.gate_stock + n.pending_units + n.live_units + n.unreturned_units)
        if unaccounted > 0:
            problems.append(f"{unaccounted} units unaccounted for (counted fewer than the initial stock)")
        elif unaccounted < 0:
            problems.append(f"{-unaccounted} units counted twice (OVERSELL risk: more than the initial)")
        if n.gate_stock < 0:
            problems.append(f"the gate's stock is negative ({n.gate_stock})")
        if n.gate_initial is not None and n.gate_initial != n.initial:
            problems.append(f"the gate was built with {n.gate_initial} units, the record says {n.initial}")
    if n.ledger is None:
        problems.append("the sale has no stock ledger row")
    elif n.ledger != n.initial - n.live_units:
        problems.append(
            f"the ledger says {n.ledger} remaining, the orders say {n.initial - n.live_units}"
            f" ({n.initial} - {n.live_units} not expired)"
        )
    if n.live_units > n.initial:
        problems.append(f"OVERSOLD: {n.live_units} units in live orders, initial stock {n.initial}")
    for user, units in sorted(n.users_above_limit.items()):
        problems.append(f"user {user} holds {units} units, above the per-user limit {n.per_user_limit}")
    for reservation in n.given_back_and_live:
        problems.append(f"reservation {reservation} was given back to the gate and is also a live order")
    return Verdict(n, not problems, unaccounted, problems)
