"""The record: PostgreSQL schema, its migrations, and the statements that write orders.

The database is the ledger, never the gate: `orders` has one row per reservation (its primary key,
so a redelivered message can never make a second order) and at most one live order per user and
sale; `stock_ledger.remaining` is decremented in the same transaction as the orders are inserted,
under a CHECK that it never goes below zero - if the gate ever let one unit too many through, the
transaction fails instead of overselling.
"""

from __future__ import annotations

from typing import Final

import psycopg

# Each migration runs once, in order, in its own transaction; `flashsale_schema` remembers them.
MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE sales (
        sale_id        text PRIMARY KEY,
        sale_name      text NOT NULL,
        initial_stock  integer NOT NULL CHECK (initial_stock > 0),
        per_user_limit integer NOT NULL CHECK (per_user_limit > 0),
        created_at     timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE stock_ledger (
        sale_id   text PRIMARY KEY REFERENCES sales ON DELETE CASCADE,
        remaining integer NOT NULL CHECK (remaining >= 0)
    );
    CREATE TABLE orders (
        reservation_id text PRIMARY KEY,
        sale_id        text NOT NULL REFERENCES sales ON DELETE CASCADE,
        user_id        text NOT NULL,
        quantity       integer NOT NULL CHECK (quantity > 0),
        state          text NOT NULL DEFAULT 'ordered' CHECK (state IN ('ordered', 'paid', 'expired')),
        reserved_at    timestamptz NOT NULL,
        created_at     timestamptz NOT NULL DEFAULT now(),
        expires_at     timestamptz NOT NULL,
        paid_at        timestamptz,
        expired_at     timestamptz
    );
    -- One live order per user and sale; an expired one frees the user to buy again.
    CREATE UNIQUE INDEX orders_one_live_per_user ON orders (sale_id, user_id) WHERE state <> 'expired';
    CREATE INDEX orders_by_sale_state ON orders (sale_id, state, expires_at);
    """,
)

_LOCK_ID: Final = 0x666C617368  # "flash": one migrator at a time, whatever the number of replicas


def migrate(conn: psycopg.Connection[tuple[object, ...]]) -> list[int]:
    """Bring the schema up to date; idempotent and safe to run from several processes at once.

    Returns the versions applied by this call (empty when already current).
    """
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS flashsale_schema"
            " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        row = conn.execute("SELECT coalesce(max(version), 0) FROM flashsale_schema").fetchone()
        current = int(str(row[0])) if row else 0
        for version, statements in enumerate(MIGRATIONS, start=1):
            if version > current:
                conn.execute(statements)
                conn.execute("INSERT INTO flashsale_schema (version) VALUES (%s)", (version,))
                applied.append(version)
    return applied


def schema_version(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute("SELECT coalesce(max(version), 0) FROM flashsale_schema").fetchone()
    return int(str(row[0])) if row else 0


# The sale's row and its ledger, created once with the initial stock (later calls change nothing).
ENSURE_SALE: Final = """
WITH sale AS (
    INSERT INTO sales (sale_id, sale_name, initial_stock, per_user_limit)
    VALUES (%(sale)s, %(name)s, %(stock)s, %(limit)s)
    ON CONFLICT (sale_id) DO NOTHING
)
INSERT INTO stock_ledger (sale_id, remaining) VALUES (%(sale)s, %(stock)s)
ON CONFLICT (sale_id) DO NOTHING
"""

# One batch of reservations -> orders, in one statement: new reservations become orders, the ledger
# goes down by exactly what was inserted (a redelivered reservation inserts nothing and takes
# nothing). Returns the ids inserted now, the ids that were orders already (a redelivery: all CTEs
# see the snapshot from before the insert), and the ledger's remaining stock. Run it in the
# transaction that precedes the offset commit.
INSERT_ORDERS: Final = """
WITH incoming AS (
    SELECT * FROM unnest(%(reservations)s::text[], %(users)s::text[], %(quantities)s::integer[],
                         %(reserved_ms)s::bigint[]) AS t(reservation_id, user_id, quantity, reserved_ms)
), inserted AS (
    INSERT INTO orders (reservation_id, sale_id, user_id, quantity, reserved_at, expires_at)
    SELECT reservation_id, %(sale)s, user_id, quantity, to_timestamp(reserved_ms / 1000.0),
           to_timestamp(reserved_ms / 1000.0) + make_interval(secs => %(payment_timeout)s)
    FROM incoming
    ON CONFLICT DO NOTHING
    RETURNING reservation_id, quantity
), ledger AS (
    UPDATE stock_ledger SET remaining = remaining - (SELECT coalesce(sum(quantity), 0) FROM inserted)
    WHERE sale_id = %(sale)s
    RETURNING remaining
)
SELECT (SELECT coalesce(array_agg(reservation_id), '{}') FROM inserted) AS inserted,
       (SELECT coalesce(array_agg(reservation_id), '{}') FROM orders
         WHERE reservation_id = ANY(%(reservations)s::text[])) AS already_ordered,
       (SELECT remaining FROM ledger) AS remaining
"""

ORDER_BY_RESERVATION: Final = """
SELECT user_id, state, quantity, expires_at FROM orders WHERE reservation_id = %(reservation)s
AND sale_id = %(sale)s
"""
