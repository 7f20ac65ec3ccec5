"""Reads the reconciliation's numbers from Redis and PostgreSQL as one consistent moment.

The two stores cannot be read atomically together, so the gate is read twice around one database
snapshot (REPEATABLE READ): first (stock, pending, |settled|), then the record, then (stock, |pending|,
|settled|) again with the membership questions. The gate's stock only rises by a release or a return,
both of which add to `settled`, and a reservation lowers it; so equal readings mean the gate did not
move while the record was read, and every flow between the stores (an order written before its
reservation leaves `pending`, an expiry before its return) is then counted exactly once. A sale that
keeps moving gives no stable reading: the caller tries again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import redis
from psycopg import IsolationLevel

from flashsale_sale import db
from flashsale_sale.contract import SaleKeys, parse_pending
from flashsale_sale.reconcile import Numbers, Verdict, judge


class SaleUnknown(Exception):
    """The record has no such sale."""


@dataclass(frozen=True)
class _Gate:
    stock: int | None
    initial: int | None
    pending: dict[str, int]
    settled: int


def read_numbers(
    client: redis.Redis, conn: psycopg.Connection[Any], sale_id: str, *, thorough: bool = True
) -> Numbers | None:
    """One attempt: the numbers, or None when the gate moved while the record was read.

    `thorough` also asks whether any live order was given back (every live order id against
    `settled`): what `flashsale reconcile` does; the periodic check skips it to stay cheap.
    """
    keys = SaleKeys(sale_id)
    before = _read_gate(client, keys)
    record = _read_record(conn, sale_id, list(before.pending), thorough)
    unreturned_ids = list(record.unreturned)
    pipe = client.pipeline(transaction=True)
    pipe.get(keys.stock)
    pipe.hlen(keys.pending)
    pipe.scard(keys.settled)
    for ids in (unreturned_ids, record.live_ids):
        if ids:  # Redis refuses an empty SMISMEMBER
            pipe.smismember(keys.settled, ids)
    stock, pending_count, settled, *flags = pipe.execute()
    unreturned_flags = flags.pop(0) if unreturned_ids else []
    live_flags = flags.pop(0) if record.live_ids else []
    if (_int(stock), int(pending_count), int(settled)) != (before.stock, len(before.pending), before.settled):
        return None
    returned = dict(zip(unreturned_ids, unreturned_flags, strict=True))
    unreturned = sum(units for rid, units in record.unreturned.items() if not returned[rid])
    given_back = [rid for rid, back in zip(record.live_ids, live_flags, strict=True) if back]
    return Numbers(
        sale_id=sale_id,
        initial=record.initial,
        per_user_limit=record.per_user_limit,
        retired=record.retired,
        ledger=record.ledger,
        gate_stock=before.stock,
        gate_initial=before.initial,
        pending_units=sum(u for rid, u in before.pending.items() if rid not in record.pending_ordered),
        live_units=sum(units for state, (_, units) in record.orders.items() if state != "expired"),
        unreturned_units=unreturned,
        orders={state: count for state, (count, _) in record.orders.items()},
        users_above_limit=record.users_above_limit,
        given_back_and_live=given_back,
    )


def reconcile(
    client: redis.Redis,
    conn: psycopg.Connection[Any],
    sale_id: str,
    *,
    attempts: int = 50,
    pause_seconds: float = 0.1,
    thorough: bool = True,
) -> Verdict | None:
    """The verdict on the first stable reading, or None if the sale never stood still long enough."""
    for attempt in range(attempts):
        numbers = read_numbers(client, conn, sale_id, thorough=thorough)
        if numbers is not None:
            return judge(numbers)
        if attempt + 1 < attempts:
            time.sleep(pause_seconds)
    return None


def _read_gate(client: redis.Redis, keys: SaleKeys) -> _Gate:
    pipe = client.pipeline(transaction=True)
    pipe.get(keys.stock)
    pipe.get(keys.initial)
    pipe.hgetall(keys.pending)
    pipe.scard(keys.settled)
    stock, initial, pending, settled = pipe.execute()
    records = {_text(rid): parse_pending(record)[1] for rid, record in pending.items()}
    return _Gate(_int(stock), _int(initial), records, int(settled))


@dataclass(frozen=True)
class _Record:
    initial: int
    per_user_limit: int
    retired: bool
    ledger: int | None
    orders: dict[str, tuple[int, int]]  # state -> (orders, units)
    pending_ordered: set[str]
    unreturned: dict[str, int]
    users_above_limit: dict[str, int]
    live_ids: list[str]


def _read_record(
    conn: psycopg.Connection[Any], sale_id: str, pending_ids: Sequence[str], thorough: bool
) -> _Record:
    sale = {"sale": sale_id}
    conn.isolation_level = IsolationLevel.REPEATABLE_READ
    try:
        with conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            row = conn.execute(db.SALE_RECORD, sale).fetchone()
            if row is None:
                raise SaleUnknown(f"the record has no sale {sale_id!r}")
            initial, limit, retired, ledger = row
            orders = {
                str(s): (int(c), int(u)) for s, c, u in conn.execute(db.ORDERS_BY_STATE, sale).fetchall()
            }
            ordered = conn.execute(db.ORDERS_BY_IDS, {**sale, "reservations": list(pending_ids)}).fetchall()
            unreturned = {str(r): int(q) for r, q in conn.execute(db.UNRETURNED, sale).fetchall()}
            above = conn.execute(db.USERS_ABOVE_LIMIT, {**sale, "limit": limit}).fetchall()
            live = conn.execute(db.LIVE_ORDERS, sale).fetchall() if thorough else []
    finally:
        conn.isolation_level = None
    return _Record(
        initial=int(initial),
        per_user_limit=int(limit),
        retired=bool(retired),
        ledger=None if ledger is None else int(ledger),
        orders=orders,
        pending_ordered={str(r) for (r,) in ordered},
        unreturned=unreturned,
        users_above_limit={str(u): int(q) for u, q in above},
        live_ids=[str(r) for r, _, _ in live],
    )


def _int(value: bytes | None) -> int | None:
    return None if value is None else int(value)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
