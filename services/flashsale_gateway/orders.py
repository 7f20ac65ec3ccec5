"""`GET /api/orders/{id}`: a reservation's state, from the record (PostgreSQL) or else the gate (Redis).

The order row is the truth once the consumer wrote it (ordered, paid, expired); before that the
gate's pending record says "reserved". Only the owner learns anything: for anyone else it does not
exist (404), so ids cannot be probed.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from flashsale_gateway.state import rfc3339
from flashsale_sale.contract import SaleKeys, parse_pending
from flashsale_sale.db import ORDER_BY_RESERVATION

RESERVATION_ID: Final = re.compile(r"[A-Za-z0-9-]{1,64}")
QUERY_TIMEOUT_SECONDS: Final = 3.0


class LookupUnavailable(Exception):
    """Neither store could answer for certain (503)."""


@dataclass(frozen=True)
class OrderView:
    reservation_id: str
    state: str  # reserved | ordered | paid | expired
    quantity: int
    expires_at: str

    def payload(self) -> dict[str, Any]:
        return {
            "reservationId": self.reservation_id,
            "state": self.state,
            "quantity": self.quantity,
            "expiresAt": self.expires_at,
        }


class SmallPool:
    """A few reused async connections: order lookups are rare next to buys, a full pool is overkill."""

    def __init__(self, url: str, size: int = 4) -> None:
        self._url = url
        self._idle: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()
        self._slots = asyncio.Semaphore(size)

    async def fetch_one(self, query: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        async with self._slots:
            conn = self._idle.get_nowait() if not self._idle.empty() else None
            if conn is None or conn.closed:
                conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True, connect_timeout=3)
            try:
                cursor = await conn.execute(query, params)
                row = await cursor.fetchone()
            except BaseException:
                await conn.close()
                raise
            self._idle.put_nowait(conn)
            return row

    async def close(self) -> None:
        while not self._idle.empty():
            await self._idle.get_nowait().close()


async def find_order(
    pool: SmallPool,
    *,
    client: aioredis.Redis,
    keys: SaleKeys,
    reservation_id: str,
    user: str,
    payment_timeout_seconds: int,
) -> OrderView | None:
    """The owner's view of a reservation; None when it is unknown or someone else's."""
    if not RESERVATION_ID.fullmatch(reservation_id):
        return None
    db_failed = False
    try:
        row = await asyncio.wait_for(
            pool.fetch_one(ORDER_BY_RESERVATION, {"reservation": reservation_id, "sale": keys.sale_id}),
            QUERY_TIMEOUT_SECONDS,
        )
    except (psycopg.Error, OSError, TimeoutError):
        row, db_failed = None, True
    if row is not None:
        owner, state, quantity, expires_at = row
        return (
            OrderView(reservation_id, str(state), int(quantity), rfc3339(expires_at))
            if owner == user
            else None
        )
    try:
        record = await client.hget(keys.pending, reservation_id)
    except (RedisError, OSError) as error:
        raise LookupUnavailable(str(error)) from error
    if record is None:
        if db_failed:
            raise LookupUnavailable("the order database did not answer")
        return None
    owner, quantity, reserved_ms = parse_pending(record)
    if owner != user:
        return None
    expires = datetime.fromtimestamp(reserved_ms / 1000, UTC) + timedelta(seconds=payment_timeout_seconds)
    return OrderView(reservation_id, "reserved", quantity, rfc3339(expires))
