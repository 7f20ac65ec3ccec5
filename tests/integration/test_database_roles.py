"""The processes' PostgreSQL roles, as `flashsale migrate` grants them: each may run exactly the
statements its process runs (services/flashsale_sale/db.py), and nothing that changes the schema or
destroys rows. Real statements against a real PostgreSQL, as logins in each role."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from flashsale_consumer.batch import order_parameters
from flashsale_dev.database_roles import create_login
from flashsale_dev.pytest_plugin import PostgresSchema
from flashsale_sale import db
from flashsale_sale.contract import ReservationMessage

SALE = "roles-sale"
Connection = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture
def logins(pg_schema: PostgresSchema) -> Iterator[dict[str, str]]:
    """The schema migrated by its owner; a gateway and a consumer login (URLs), dropped afterwards."""
    names = {role: f"test_{role.split('_')[1]}_{uuid.uuid4().hex[:8]}" for role in db.ROLES}
    with pg_schema.connect() as owner:
        db.migrate(owner)
        db.migrate(owner)  # idempotent: the roles and grants again, no error
        urls = {
            role: create_login(owner, owner_url=pg_schema.url, login=name, role=role)
            for role, name in names.items()
        }
    yield urls
    with pg_schema.connect(autocommit=True) as owner:
        for name in names.values():
            owner.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def connect(url: str) -> Connection:
    return psycopg.connect(url, connect_timeout=10, autocommit=True)


def refused(conn: Connection, statement: str, params: dict[str, Any] | None = None) -> bool:
    """True when PostgreSQL refuses the statement for lack of privilege (it changes nothing)."""
    try:
        conn.execute(statement.encode(), params)
    except errors.InsufficientPrivilege:
        return True
    return False


DESTRUCTIVE = (
    "DROP TABLE orders",
    "DROP TABLE stock_ledger",
    "ALTER TABLE orders ADD COLUMN sneaky text",
    "ALTER TABLE orders DROP CONSTRAINT orders_state_check",
    "TRUNCATE orders",
    "TRUNCATE stock_ledger",
    "DELETE FROM orders",
    "DELETE FROM sales",
    "CREATE TABLE my_own (x int)",
)


def one_reservation(user: str, reserved_ms: int) -> dict[str, Any]:
    message = ReservationMessage(SALE, f"r-{user}", user, 1, reserved_ms)
    return order_parameters(SALE, 60, [message])


def test_the_consumer_writes_and_settles_orders_and_can_destroy_nothing(logins: dict[str, str]) -> None:
    with connect(logins[db.CONSUMER_ROLE]) as consumer:
        assert db.schema_version(consumer) == len(db.MIGRATIONS)  # its start-up check
        sale = {"sale": SALE, "name": SALE, "stock": 3, "limit": 1}
        consumer.execute(db.ENSURE_SALE, sale)
        consumer.execute(db.ENSURE_SALE, {**sale, "limit": 2})  # a raised limit
        now_ms = int(time.time() * 1000)
        row = consumer.execute(db.INSERT_ORDERS, one_reservation("alice", now_ms)).fetchone()
        assert row is not None
        assert (row[0], row[2]) == (["r-alice"], 2)
        consumer.execute(db.INSERT_ORDERS, one_reservation("bob", now_ms - 120_000))  # past its deadline
        assert consumer.execute(db.EXPIRE_DUE, {"sale": SALE, "limit": 100}).fetchone() == (1, 1)
        due = consumer.execute(db.RETURNS_DUE, {"sale": SALE, "limit": 100}).fetchall()
        assert [r[0] for r in due] == ["r-bob"]
        consumer.execute(db.MARK_RETURNED, {"sale": SALE, "reservations": ["r-bob"]})
        by_ids = consumer.execute(db.ORDERS_BY_IDS, {"sale": SALE, "reservations": ["r-alice", "r-x"]})
        assert by_ids.fetchall() == [("r-alice",)]
        read = {"sale": SALE}
        assert consumer.execute(db.SALE_RECORD, read).fetchone() == (3, 2, False, 2)  # reconciliation
        for statement in (db.ORDERS_BY_STATE, db.UNRETURNED, db.LIVE_ORDERS, db.EXPIRED_ORDER_IDS):
            consumer.execute(statement, read).fetchall()
        consumer.execute(db.USERS_ABOVE_LIMIT, {**read, "limit": 1}).fetchall()

        for statement in DESTRUCTIVE:
            assert refused(consumer, statement), statement
        # Orders are born 'ordered': the consumer cannot insert one already paid.
        assert refused(
            consumer,
            "INSERT INTO orders (reservation_id, sale_id, user_id, quantity, state, reserved_at, expires_at)"
            " VALUES ('r-free', %(sale)s, 'eve', 1, 'paid', now(), now())",
            {"sale": SALE},
        )
        assert refused(consumer, "UPDATE orders SET quantity = 9")
        assert refused(consumer, "UPDATE sales SET initial_stock = 1000")  # the prewarm's (the owner's)


def test_the_gateway_reads_and_pays_orders_and_can_write_nothing_else(logins: dict[str, str]) -> None:
    with connect(logins[db.CONSUMER_ROLE]) as consumer:
        consumer.execute(db.ENSURE_SALE, {"sale": SALE, "name": SALE, "stock": 3, "limit": 1})
        consumer.execute(db.INSERT_ORDERS, one_reservation("alice", int(time.time() * 1000)))
    with connect(logins[db.GATEWAY_ROLE]) as gateway:
        order = gateway.execute(db.ORDER_BY_RESERVATION, {"reservation": "r-alice", "sale": SALE}).fetchone()
        assert order is not None
        assert order[:3] == ("alice", "ordered", 1)
        assert gateway.execute(db.PAY_ORDER, {"reservation": "r-alice", "sale": SALE}).fetchone() == (
            1,
            "ordered",
            False,
        )
        assert gateway.execute(db.PAY_ORDER, {"reservation": "r-alice", "sale": SALE}).fetchone() == (
            0,
            "paid",
            False,
        )

        for statement in DESTRUCTIVE:
            assert refused(gateway, statement), statement
        assert refused(
            gateway,
            "INSERT INTO orders (reservation_id, sale_id, user_id, quantity, reserved_at, expires_at)"
            " VALUES ('r-free', %(sale)s, 'eve', 1, now(), now() + interval '1 hour')",
            {"sale": SALE},
        )
        assert refused(gateway, "UPDATE orders SET quantity = 9, expires_at = now() + interval '1 year'")
        assert refused(gateway, "UPDATE stock_ledger SET remaining = remaining + 100")
        assert refused(gateway, "SELECT * FROM stock_ledger")
        assert refused(gateway, "INSERT INTO flashsale_schema (version) VALUES (99)")
