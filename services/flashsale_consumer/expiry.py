"""Unpaid orders expire in the record, then their units go back to the gate - each exactly once.

Expiry is a conditional UPDATE on the order's row (state 'ordered' and past its deadline), so it and
a payment can never both win; the ledger gets the units back in the same statement. The return to
Redis is an outbox: expired orders whose `returned_at` is NULL are locked (SKIP LOCKED: replicas
take different rows), applied with RETURN_LUA, then marked returned, in one transaction. A crash
between Redis and the commit repeats the script, which the `settled` set makes a no-op.
"""

from __future__ import annotations

from typing import Any

import psycopg
import redis

from flashsale_sale import db
from flashsale_sale.contract import SaleKeys
from flashsale_sale.settlement_lua import RETURN_LUA, return_args, return_keys

BATCH = 1_000
MAX_BATCHES_PER_TICK = 20  # a backlog is worked off over a few ticks, never starving the other steps


def expire_due(conn: psycopg.Connection[Any], sale_id: str) -> tuple[int, int]:
    """Expires every order past its deadline (a batch per transaction); (orders, units) expired."""
    orders = units = 0
    for _ in range(MAX_BATCHES_PER_TICK):
        with conn.transaction():
            row = conn.execute(db.EXPIRE_DUE, {"sale": sale_id, "limit": BATCH}).fetchone()
        count, quantity = (int(row[0]), int(row[1])) if row else (0, 0)
        orders, units = orders + count, units + quantity
        if count < BATCH:
            break
    return orders, units


def return_expired(conn: psycopg.Connection[Any], client: redis.Redis, keys: SaleKeys) -> tuple[int, int]:
    """Applies the returns outbox to the gate; (orders settled, units added to the gate's stock)."""
    script = client.register_script(RETURN_LUA)
    orders = units = 0
    for _ in range(MAX_BATCHES_PER_TICK):
        with conn.transaction():
            due = conn.execute(db.RETURNS_DUE, {"sale": keys.sale_id, "limit": BATCH}).fetchall()
            if not due:
                break
            expired = [(str(r), str(u), int(q)) for r, u, q in due]
            units += int(script(keys=return_keys(keys), args=return_args(expired)))
            ids = [reservation for reservation, _, _ in expired]
            conn.execute(db.MARK_RETURNED, {"sale": keys.sale_id, "reservations": ids})
        orders += len(due)
        if len(due) < BATCH:
            break
    return orders, units
