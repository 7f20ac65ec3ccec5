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
    # Settlement (docs/settlement.md): expired orders whose units are not yet back in the gate are
    # the outbox (returned_at NULL); a retired sale is never rebuilt.
    """
    ALTER TABLE orders ADD COLUMN returned_at timestamptz;
    ALTER TABLE sales ADD COLUMN retired_at timestamptz;
    CREATE INDEX orders_return_outbox ON orders (sale_id, expired_at)
        WHERE state = 'expired' AND returned_at IS NULL;
    """,
)

_LOCK_ID: Final = 0x666C617368  # "flash": one migrator at a time, whatever the number of replicas

# The processes' group roles (NOLOGIN): the platform creates a login in each (`CREATE ROLE ... LOGIN
# PASSWORD ... IN ROLE flashsale_gateway`) and gives the operator its URL. Each is granted exactly
# the statements its process runs below; neither owns anything, so neither can ALTER, DROP or
# TRUNCATE a table, and neither has DELETE. The schema's owner (who runs `flashsale migrate`, and the
# operator's prewarm) keeps everything else.
GATEWAY_ROLE: Final = "flashsale_gateway"
CONSUMER_ROLE: Final = "flashsale_consumer"
ROLES: Final = (GATEWAY_ROLE, CONSUMER_ROLE)
_CREATE_ROLE: Final = """
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
        CREATE ROLE {role} NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;  -- another database's migrator won
END $$
"""
GRANTS: Final = f"""
DO $$ BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO {GATEWAY_ROLE}, {CONSUMER_ROLE}', current_schema());
END $$;
-- The gateway: the order view (ORDER_BY_RESERVATION) and the payment (PAY_ORDER); no INSERT.
GRANT SELECT ON orders TO {GATEWAY_ROLE};
GRANT UPDATE (state, paid_at) ON orders TO {GATEWAY_ROLE};
-- The consumer: its schema check, the sale's row (ENSURE_SALE), a batch of orders (INSERT_ORDERS),
-- settlement (EXPIRE_DUE, RETURNS_DUE, MARK_RETURNED), recovery and reconciliation (SELECTs). An
-- order is inserted 'ordered' (the state column's default): never 'paid' by the consumer.
GRANT SELECT ON flashsale_schema, sales, stock_ledger, orders TO {CONSUMER_ROLE};
GRANT INSERT ON sales, stock_ledger TO {CONSUMER_ROLE};
GRANT UPDATE (per_user_limit) ON sales TO {CONSUMER_ROLE};
GRANT UPDATE (remaining) ON stock_ledger TO {CONSUMER_ROLE};
GRANT INSERT (reservation_id, sale_id, user_id, quantity, reserved_at, expires_at)
    ON orders TO {CONSUMER_ROLE};
GRANT UPDATE (state, expired_at, returned_at) ON orders TO {CONSUMER_ROLE};
"""


def migrate(conn: psycopg.Connection[tuple[object, ...]]) -> list[int]:
    """Bring the schema up to date and grant the processes' roles (created when missing: this needs
    CREATEROLE the first time); idempotent and safe to run from several processes at once.

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
        for role in ROLES:
            conn.execute(_CREATE_ROLE.format(role=role).encode())
        conn.execute(GRANTS.encode())
    return applied


def schema_version(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute("SELECT coalesce(max(version), 0) FROM flashsale_schema").fetchone()
    return int(str(row[0])) if row else 0


# The sale's row and its ledger, created once with the initial stock. Later calls change only the
# per-user limit, to the highest ever in force (a live sale's limit may be raised: the orders taken
# under it are legitimate). The stock is the prewarm's to adopt (ADOPT_STOCK), before the gate exists.
ENSURE_SALE: Final = """
WITH sale AS (
    INSERT INTO sales (sale_id, sale_name, initial_stock, per_user_limit)
    VALUES (%(sale)s, %(name)s, %(stock)s, %(limit)s)
    ON CONFLICT (sale_id)
    DO UPDATE SET per_user_limit = GREATEST(sales.per_user_limit, EXCLUDED.per_user_limit)
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

# ---- settlement (docs/settlement.md) ----

# Payment (by the shop's payment service, for any order of the sale): a conditional UPDATE on the
# order's row, so it and the expiry cannot both win; the deadline (the database's clock) is the arbiter,
# whether the expiry has run yet or not. The SELECT reads the row as it was before this statement:
# `paid_now` says whether this call paid it.
PAY_ORDER: Final = """
WITH paid AS (
    UPDATE orders SET state = 'paid', paid_at = now()
    WHERE reservation_id = %(reservation)s AND sale_id = %(sale)s
      AND state = 'ordered' AND expires_at > now()
    RETURNING reservation_id
)
SELECT (SELECT count(*) FROM paid) AS paid_now, state, expires_at <= now() AS past_deadline
FROM orders WHERE reservation_id = %(reservation)s AND sale_id = %(sale)s
"""

# Unpaid orders past their deadline expire, a batch at a time; SKIP LOCKED lets several replicas share
# the work (and a payment holding a row wins or loses on its own). The ledger gets the units back in
# the same statement; it is not touched (not even locked) when nothing expired.
EXPIRE_DUE: Final = """
WITH due AS (
    SELECT reservation_id FROM orders
    WHERE sale_id = %(sale)s AND state = 'ordered' AND expires_at <= now()
    ORDER BY expires_at LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), expired AS (
    UPDATE orders o SET state = 'expired', expired_at = now()
    FROM due WHERE o.reservation_id = due.reservation_id AND o.state = 'ordered'
    RETURNING o.quantity
), ledger AS (
    UPDATE stock_ledger SET remaining = remaining + (SELECT sum(quantity) FROM expired)
    WHERE sale_id = %(sale)s AND EXISTS (SELECT 1 FROM expired)
    RETURNING remaining
)
SELECT (SELECT count(*) FROM expired), (SELECT coalesce(sum(quantity), 0) FROM expired)
"""

# The returns outbox: expired orders whose units are not back in the gate yet. Locked while their
# RETURN_LUA runs (SKIP LOCKED: another replica takes other rows), then marked returned.
RETURNS_DUE: Final = """
SELECT reservation_id, user_id, quantity FROM orders
WHERE sale_id = %(sale)s AND state = 'expired' AND returned_at IS NULL
ORDER BY expired_at LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""

MARK_RETURNED: Final = """
UPDATE orders SET returned_at = now()
WHERE sale_id = %(sale)s AND reservation_id = ANY(%(reservations)s::text[]) AND returned_at IS NULL
"""

# Which of these reservations are orders (any state): the recovery and the reconciliation ask.
ORDERS_BY_IDS: Final = """
SELECT reservation_id FROM orders WHERE sale_id = %(sale)s AND reservation_id = ANY(%(reservations)s::text[])
"""

# (state, orders, units) of the sale's orders.
ORDERS_BY_STATE: Final = """
SELECT state, count(*), coalesce(sum(quantity), 0) FROM orders WHERE sale_id = %(sale)s GROUP BY state
"""

# Before the first build of the gate (no order, no message ever): the spec's stock becomes the record's.
ADOPT_STOCK: Final = """
WITH sale AS (UPDATE sales SET initial_stock = %(stock)s WHERE sale_id = %(sale)s)
UPDATE stock_ledger SET remaining = %(stock)s WHERE sale_id = %(sale)s
"""

# The sale's row and ledger: initial stock, per-user limit, retired or not, the ledger's remaining.
SALE_RECORD: Final = """
SELECT s.initial_stock, s.per_user_limit, s.retired_at IS NOT NULL, l.remaining
FROM sales s LEFT JOIN stock_ledger l USING (sale_id) WHERE s.sale_id = %(sale)s
"""

# The ledger row, locked: held by the rebuild so no order is written nor expired while it counts.
LOCK_LEDGER: Final = "SELECT remaining FROM stock_ledger WHERE sale_id = %(sale)s FOR UPDATE"

# Orders not expired: (reservation id, user, quantity) - their units are not in the gate.
LIVE_ORDERS: Final = """
SELECT reservation_id, user_id, quantity FROM orders WHERE sale_id = %(sale)s AND state <> 'expired'
"""

EXPIRED_ORDER_IDS: Final = "SELECT reservation_id FROM orders WHERE sale_id = %(sale)s AND state = 'expired'"

# Expired orders not marked returned: (reservation id, quantity).
UNRETURNED: Final = """
SELECT reservation_id, quantity FROM orders
WHERE sale_id = %(sale)s AND state = 'expired' AND returned_at IS NULL
"""

# Users holding more live units than the per-user limit (at most a few, for the report).
USERS_ABOVE_LIMIT: Final = """
SELECT user_id, sum(quantity) FROM orders WHERE sale_id = %(sale)s AND state <> 'expired'
GROUP BY user_id HAVING sum(quantity) > %(limit)s ORDER BY user_id LIMIT 20
"""

RETIRE_SALE: Final = """
UPDATE sales SET retired_at = coalesce(retired_at, now()) WHERE sale_id = %(sale)s RETURNING retired_at
"""
