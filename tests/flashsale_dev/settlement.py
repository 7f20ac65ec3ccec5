"""Settlement helpers for tests and the chaos suite, on top of a `LocalSale`.

What a gateway does at the gate without HTTP (reserve in Redis, then publish - or die before the
publish), what the operator runs (`flashsale prewarm`, `flashsale reconcile`, as real processes
with the sale's environment), and what the record says about orders by state.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from flashsale_dev.sale import FLASHSALE, LocalSale
from flashsale_sale.contract import RESERVE_LUA, Outcome, ReservationMessage, buyer_arg, parse_reserve_reply


def reserve(sale: LocalSale, users: list[str], quantity: int = 1) -> list[ReservationMessage]:
    """The gate's decision for each user, as a gateway asks it (one script call per 500 buyers); the
    reservations it granted, as the messages the gateway would publish (the reservation time is the
    gate's, Redis' clock). Nothing is published here: a gateway that died before its publish."""
    granted: list[ReservationMessage] = []
    with sale.redis() as client:
        for start in range(0, len(users), 500):
            batch = users[start : start + 500]
            args = [buyer_arg(user, quantity, f"r-{user}") for user in batch]
            results, _ = parse_reserve_reply(client.eval(RESERVE_LUA, 5, *sale.keys.reserve_keys(), *args))
            granted += [
                ReservationMessage(sale.sale_id, r.reservation_id, user, r.quantity, r.reserved_ms)
                for user, r in zip(batch, results, strict=True)
                if r.outcome is Outcome.RESERVED
            ]
    return granted


def flashsale(sale: LocalSale, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`flashsale <args>` as a process with the sale's environment (its Redis, database, Kafka)."""
    return subprocess.run(
        [str(FLASHSALE), *args], env=sale.env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def reconcile(sale: LocalSale) -> tuple[int, dict[str, Any]]:
    """`flashsale reconcile --sale S --json`: its exit code and its numbers."""
    done = flashsale(sale, "reconcile", "--sale", sale.sale_id, "--json")
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def assert_reconciled(sale: LocalSale) -> dict[str, Any]:
    code, numbers = reconcile(sale)
    assert code == 0, numbers
    assert numbers["ok"], numbers
    return numbers


def prewarm(sale: LocalSale, *extra: str) -> subprocess.CompletedProcess[str]:
    """`flashsale prewarm` for the sale, on its topic and group."""
    return flashsale(
        sale, "prewarm", "--sale", sale.sale_id, "--name", sale.sale_name, "--stock", str(sale.stock),
        "--per-user-limit", str(sale.per_user_limit), "--topic", sale.topic, "--group", sale.group, *extra,
    )  # fmt: skip


def orders_by_state(sale: LocalSale) -> dict[str, set[str]]:
    """reservation ids of the sale's orders, by state."""
    by_state: dict[str, set[str]] = {"ordered": set(), "paid": set(), "expired": set()}
    with sale.database() as conn:
        rows = conn.execute(
            "SELECT state, reservation_id FROM orders WHERE sale_id = %s", (sale.sale_id,)
        ).fetchall()
    for state, reservation in rows:
        by_state[str(state)].add(str(reservation))
    return by_state


def set_deadlines(sale: LocalSale, deadlines: dict[str, float]) -> dict[str, float]:
    """Moves orders' payment deadlines (reservation id -> seconds from the database's now; negative:
    passed already): what the clock does to an order, without a test waiting out a real payment
    window. Payment, expiry and the settlement loop then judge them as they would any order.
    Returns the new deadlines (epoch seconds) of the orders moved (those still `ordered`)."""
    with sale.database() as conn:
        rows = conn.execute(
            "UPDATE orders SET expires_at = now() + make_interval(secs => d.seconds)"
            " FROM unnest(%s::text[], %s::float8[]) AS d(reservation_id, seconds)"
            " WHERE orders.sale_id = %s AND orders.reservation_id = d.reservation_id"
            " AND orders.state = 'ordered'"
            " RETURNING orders.reservation_id, extract(epoch FROM orders.expires_at)",
            (list(deadlines), list(deadlines.values()), sale.sale_id),
        ).fetchall()
    return {str(rid): float(epoch) for rid, epoch in rows}


def settled(sale: LocalSale) -> set[str]:
    """The reservation ids whose units went back to the gate."""
    with sale.redis() as client:
        return {member.decode() for member in client.smembers(sale.keys.settled)}


def unreturned(sale: LocalSale) -> int:
    """Expired orders whose units are not back in the gate yet (the outbox)."""
    with sale.database() as conn:
        row = conn.execute(
            "SELECT count(*) FROM orders WHERE sale_id = %s AND state = 'expired' AND returned_at IS NULL",
            (sale.sale_id,),
        ).fetchone()
    return 0 if row is None else int(row[0])
