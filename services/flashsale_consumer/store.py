"""The consumer's side of the record: check the schema, ensure the sale's ledger, write one batch.

A batch is ONE transaction running ONE statement (db.INSERT_ORDERS): the unique reservation id makes a
redelivery write nothing, and the ledger's CHECK (remaining >= 0) turns an oversell into a failed
transaction instead of a wrong record. Errors are sorted here into what the runner must do about them:
retry (the database went away), stop the line (oversell), or stop for a human (anything else).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors

from flashsale_consumer.batch import order_parameters
from flashsale_sale import db
from flashsale_sale.contract import ReservationMessage
from flashsale_sale.settings import ConsumerSettings

log = logging.getLogger(__name__)


class SchemaError(RuntimeError):
    """The database has no schema, or an older one: `flashsale migrate` has not run."""


class OversellError(RuntimeError):
    """The ledger would go below zero: the gate let through more than the stock. Stop the line."""


class PermanentDatabaseError(RuntimeError):
    """The database refused the batch for a reason a retry will not change."""


@dataclass(frozen=True)
class WriteResult:
    inserted: list[str]  # reservations that became orders now
    already_ordered: list[str]  # reservations that were orders before (a redelivery)
    remaining: int | None  # the ledger after this batch

    @property
    def ordered(self) -> list[str]:
        """Every reservation of the batch that is an order now: these leave Redis' pending hash."""
        return self.inserted + self.already_ordered


class OrderStore:
    """One connection, used by one thread: the runner's loop."""

    def __init__(self, settings: ConsumerSettings) -> None:
        self._settings = settings
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None

    def open(self) -> None:
        """Connects, checks the schema and ensures the sale's row and ledger (idempotent)."""
        conn = self._connect()
        check_schema(conn)
        with conn.transaction():
            conn.execute(
                db.ENSURE_SALE,
                {
                    "sale": self._settings.sale_id,
                    "name": self._settings.sale_name,
                    "stock": self._settings.stock,
                    "limit": self._settings.per_user_limit,
                },
            )

    def write(self, reservations: Sequence[ReservationMessage]) -> WriteResult:
        """Writes the batch in one transaction; raises OversellError, PermanentDatabaseError or psycopg's
        OperationalError (transient: reconnect and retry the same batch - it is idempotent)."""
        conn = self._connect()
        params = order_parameters(
            self._settings.sale_id, self._settings.payment_timeout_seconds, reservations
        )
        try:
            with conn.transaction():
                row = conn.execute(db.INSERT_ORDERS, params, prepare=True).fetchone()
        except errors.CheckViolation as error:
            detail = " ".join(str(error).split())
            raise OversellError(f"{error.diag.table_name}.{error.diag.constraint_name}: {detail}") from error
        except (errors.IntegrityError, errors.DataError, errors.ProgrammingError) as error:
            raise PermanentDatabaseError(str(error)) from error
        except psycopg.Error:
            self.close()  # a fresh connection for the retry
            raise
        if row is None:
            raise PermanentDatabaseError("INSERT_ORDERS returned no row")
        inserted, already, remaining = row
        return WriteResult(list(inserted), list(already), None if remaining is None else int(remaining))

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.close()
            except psycopg.Error:
                log.debug("closing a broken connection failed", exc_info=True)

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(
                self._settings.database_url.get_secret_value(),
                connect_timeout=10,
                application_name=f"flashsale-consumer-{self._settings.sale_id}"[:63],
            )
        return self._conn


def check_schema(conn: psycopg.Connection[tuple[Any, ...]]) -> int:
    """The schema version, if this consumer can write to it; SchemaError with the remedy otherwise.

    A newer schema is accepted (during a rolling upgrade `flashsale migrate` runs first and old
    consumers keep writing); an older or missing one is refused, never migrated from here.
    """
    needed = len(db.MIGRATIONS)
    try:
        with conn.transaction():
            version = db.schema_version(conn)
    except errors.UndefinedTable:
        version = 0
    if version < needed:
        raise SchemaError(
            f"the database schema is at version {version}, this consumer needs {needed}:"
            " run `flashsale migrate` first"
        )
    if version > needed:
        log.warning("database schema version %d is newer than this consumer's %d", version, needed)
    return version
